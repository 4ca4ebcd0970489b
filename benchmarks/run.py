"""Run the benchmarks from a checkout: ``python benchmarks/run.py [options]``, the same as ``tinysiam bench``.

See benchmarks/README.md.
"""
import sys

from harness import main

if __name__ == "__main__":
    sys.exit(main())
