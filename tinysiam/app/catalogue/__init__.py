"""The gradient-check catalogue: every op, layer, distance, loss, head and wrapper.

Each area contributes a module with ``checks(rng) -> list[Check]``:
``catalogue/ops.py`` (elementary ops), ``catalogue/layers.py`` (layers) and
``catalogue/siamese.py`` (distances, losses, heads, wrappers).
``tinysiam gradcheck`` (or ``python -m tinysiam gradcheck``) runs each entry
through ``gradcheck`` in float64 and prints a table; the exit status is
non-zero if any entry fails.
"""
import argparse
import importlib
import sys
import time
from dataclasses import dataclass

import numpy as np

from ...engine import backend
from ...engine.checks import integer_problem
from ...engine.gradcheck import gradcheck

AREAS = ("ops", "layers", "siamese")
GROUPS = ("op", "layer", "distance", "loss", "head", "network")


@dataclass
class Check:
    name: str
    group: str  # one of GROUPS
    fn: object  # takes tensors, returns a tensor
    inputs: list  # float64 arrays are checked; integer arrays are held constant


def area_modules():
    """The catalogue's modules, one per area."""
    return [importlib.import_module(f"{__name__}.{area}") for area in AREAS]


def all_checks(seed=0, groups=None):
    """Every catalogue entry (or those of ``groups``), with inputs drawn from ``seed``."""
    if isinstance(groups, str):
        groups = (groups,)
    unknown = sorted(set(groups or ()) - set(GROUPS))
    if unknown:
        raise ValueError(f"groups: unknown group(s) {unknown}; choose from {GROUPS}")
    rng = np.random.default_rng(seed)
    checks = [check for module in area_modules() for check in module.checks(rng)]
    return [c for c in checks if groups is None or c.group in groups]


def run_checks(checks, device="cpu"):
    """One row per check: name, group, shapes, max relative error, passed, error message."""
    backend.check_device(device)
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
    """An aligned text table of ``run_checks`` rows, the failures' reports, and a summary line."""
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


def build_parser():
    parser = argparse.ArgumentParser(prog="tinysiam gradcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--group", action="append", choices=GROUPS, help="only these groups (repeatable)")
    parser.add_argument("-k", dest="substring", help="only checks whose name contains this (any case)")
    parser.add_argument("--device", choices=backend.DEVICES, default="cpu")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    return parser


def main(argv=None):
    """``tinysiam gradcheck``: run the catalogue, print the table; 0 if all pass, 1 if any fails, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    problem = integer_problem(args.seed, 0)  # the rule and words of train's --seed
    if problem:
        print(f"tinysiam gradcheck: error: --seed {problem}", file=sys.stderr)
        return 2
    if args.device == "gpu":
        try:
            backend.check_device("gpu")
        except RuntimeError as e:
            print(f"tinysiam gradcheck: error: {e}", file=sys.stderr)
            return 2
    substring = (args.substring or "").lower()
    checks = [c for c in all_checks(args.seed, args.group) if substring in c.name.lower()]
    if not checks:
        print(f"tinysiam gradcheck: no check matches -k {args.substring!r} in groups {args.group or 'all'}")
        return 2
    rows = run_checks(checks, args.device)
    print(format_table(rows))
    return 0 if all(r["passed"] for r in rows) else 1
