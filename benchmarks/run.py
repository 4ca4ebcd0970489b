"""Run the benchmarks: ``python benchmarks/run.py --json ... --markdown ...`` (same as ``tinysiam bench``)."""
import sys

from tinysiam.bench import main

if __name__ == "__main__":
    sys.exit(main())
