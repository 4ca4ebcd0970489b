"""The gradient-check catalogue: every op, layer, distance, loss, head and wrapper.

``tinysiam gradcheck`` (or ``python -m tinysiam gradcheck``) runs each entry
through ``gradcheck`` in float64 and prints a table; the exit status is
non-zero if any entry fails.
"""
import argparse
import time
from dataclasses import dataclass

import numpy as np

from .. import backend
from ..gradcheck import gradcheck


@dataclass
class Check:
    name: str
    group: str  # "op", "layer", "distance", "loss", "head", "network"
    fn: object  # takes tensors, returns a tensor
    inputs: list  # float64 arrays are checked; integer arrays are held constant


def all_checks(seed=0, groups=None):
    from . import layers, ops, siamese

    rng = np.random.default_rng(seed)
    checks = ops.checks(rng) + layers.checks(rng) + siamese.checks(rng)
    return [c for c in checks if groups is None or c.group in groups]


def run_checks(checks, device="cpu"):
    """One row per check: name, group, shapes, max relative error, passed, error message."""
    rows = []
    for check in checks:
        inputs = [backend.to_device(x, device) for x in check.inputs]
        start = time.perf_counter()
        row = {"name": check.name, "group": check.group, "shapes": " ".join(str(tuple(x.shape)) for x in inputs)}
        try:
            result = gradcheck(check.fn, *inputs, raise_on_failure=False)
            row.update(max_rel_error=result.max_rel_error, passed=result.passed,
                       message="" if result.passed else result.report())
        except Exception as e:  # a crash is a failure of that entry, reported in the table
            row.update(max_rel_error=float("nan"), passed=False, message=f"{type(e).__name__}: {e}")
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return rows


def format_table(rows):
    widths = [max([len(h)] + [len(str(r[k])) for r in rows]) for h, k in
              (("check", "name"), ("group", "group"), ("input shapes", "shapes"))]
    header = f"{'check':<{widths[0]}}  {'group':<{widths[1]}}  {'input shapes':<{widths[2]}}  max rel err  result"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(f"{r['name']:<{widths[0]}}  {r['group']:<{widths[1]}}  {r['shapes']:<{widths[2]}}  "
                     f"{r['max_rel_error']:11.2e}  {'PASS' if r['passed'] else 'FAIL'}")
    failed = [r for r in rows if not r["passed"]]
    for r in failed:
        lines.append(f"\nFAILED {r['name']}:\n{r['message']}")
    lines.append(f"\n{len(rows) - len(failed)} passed, {len(failed)} failed")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tinysiam gradcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--group", action="append", choices=("op", "layer", "distance", "loss", "head", "network"),
                        help="only these groups (repeatable)")
    parser.add_argument("-k", dest="substring", help="only checks whose name contains this")
    parser.add_argument("--device", choices=backend.DEVICES, default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.device == "gpu":
        try:
            backend.check_device("gpu")
        except RuntimeError as e:
            print(f"tinysiam gradcheck: error: {e}")
            return 2
    checks = [c for c in all_checks(args.seed, args.group) if not args.substring or args.substring in c.name]
    if not checks:
        print("tinysiam gradcheck: no check matches")
        return 2
    rows = run_checks(checks, args.device)
    print(format_table(rows))
    return 0 if all(r["passed"] for r in rows) else 1
