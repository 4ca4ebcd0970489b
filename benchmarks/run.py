"""Run the benchmarks from a checkout: ``python benchmarks/run.py [options]``, the same as ``tinysiam bench``.

The harness lives in ``tinysiam/bench.py`` so that it ships with the package; see benchmarks/README.md.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's tinysiam, installed or not

from tinysiam.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
