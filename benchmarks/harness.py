"""Benchmarks: tinysiam against PyTorch and DeZero, same inputs, float32, same thread count.

``tinysiam bench`` (or ``python benchmarks/run.py``) times per-op forward and
forward+backward passes (convolutions, max-pooling, batch norm, a dense
layer, the Siamese losses), training steps of tinysiam's presets, and an epoch
of ``tinysiam train``'s loop. benchmarks/README.md explains how to read the
output. The parts, by role:

- ``nets.py``: what is measured (the benchmarks, the nets from the presets, inputs, FLOPs)
- ``contenders.py``: one adapter per framework
- ``measurement.py``: worker processes, timing, memory, the profiler, the machine
- ``report.py``: statistics, ratios, targets, Markdown

PyTorch and DeZero are optional: a missing one is reported, its column skipped.
"""
import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the parts beside this file, and this checkout's tinysiam

from contenders import CONTENDERS, TITLES  # noqa: E402
from measurement import (  # noqa: E402
    SETTLE_SECONDS,
    gemm_peak_gflops,
    load_average,
    machine_info,
    measure,
    memory_method,
    start_workers,
    worker_main,
)
from nets import benchmarks  # noqa: E402
from report import BEGIN, END, add_peak_fractions, duration, markdown, spliced, summarise  # noqa: E402

from tinysiam.app.records import git_state, portable  # noqa: E402
from tinysiam.engine.checks import integer_problem  # noqa: E402
from tinysiam.serialization import write_text_atomic  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(prog="tinysiam bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run this benchmark only (repeatable)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per benchmark and contender")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before them")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="BLAS/OpenMP threads of every contender")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset of %(default)s")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run, no warm-up: checks that it runs")
    parser.add_argument("--tf32", action="store_true", help="GPU: let every contender use TF32 tensor cores")
    parser.add_argument("--profile", action="store_true", help="add a per-op profile of tinysiam's steps and epoch")
    parser.add_argument("--json", metavar="PATH", help="write the full report here")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables here")
    parser.add_argument("--results", metavar="PATH", help="put the tables, headings one level down, between the "
                        f"markers {BEGIN!r} and {END!r} of this page (benchmarks/RESULTS.md)")
    parser.add_argument("--worker", choices=CONTENDERS, help=argparse.SUPPRESS)  # internal: serve one contender
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args.worker, args.device, args.threads, args.tf32)
        return 0
    table = benchmarks(args.smoke)
    unknown = [name for name in args.only or [] if name not in table]
    if unknown:
        print(f"tinysiam bench: unknown benchmark {unknown[0]!r}; the benchmarks are: {', '.join(table)}",
              file=sys.stderr)
        return 2
    contenders = [c for c in args.contenders.split(",") if c]
    if not contenders or set(contenders) - set(CONTENDERS):
        parser.error(f"--contenders must name some of {', '.join(CONTENDERS)}, got {args.contenders!r}")
    for option, low in (("repeat", 1), ("warmup", 0), ("threads", 1)):  # the rule and words of train's options
        problem = integer_problem(getattr(args, option), low)
        if problem:
            print(f"tinysiam bench: error: --{option} {problem}", file=sys.stderr)
            return 2
    if args.results:  # a page that cannot take the tables fails now, not after the runs
        try:
            spliced(Path(args.results).read_text(), "")
        except OSError as e:
            parser.error(f"--results: {e}")
    repeat, warmup, settle = (1, 0, 0) if args.smoke else (args.repeat, args.warmup, SETTLE_SECONDS)
    load_at_start = load_average()
    report = {"command": "tinysiam bench " + shlex.join(portable(argv)),  # paths relative to the checkout
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "git": git_state(),
              "machine": machine_info(args.threads, args.device), "device": args.device, "tf32": args.tf32,
              "threads": args.threads, "repeat": repeat, "warmup": warmup, "smoke": args.smoke,
              "settle_s": settle, "contenders": contenders, "skipped": {}, "benchmarks": [],
              "memory_method": memory_method()}
    peak_n = 256 if args.smoke else 2048 if args.device == "cpu" else 8192
    peak_at_start = gemm_peak_gflops(args.device, args.threads, peak_n, args.tf32)
    report["gemm_peak_source"] = (f"{'NumPy' if args.device == 'cpu' else 'CuPy'} {peak_n}^3 matmul, best of 5 "
                                  "at the start and 5 at the end")
    workers = []
    for name in args.only or table:
        bench = table[name]
        reuse = args.smoke and workers and all(w.process.poll() is None for w in workers)  # smoke: one each
        if not reuse:
            workers = start_workers(contenders, args, report["skipped"], workers)
        results = measure(bench, workers, repeat, warmup, args.smoke, settle, args.profile)
        for contender, reason in report["skipped"].items():
            results.setdefault(contender, {"skipped": reason})
        entry = summarise(bench, results)
        report["benchmarks"].append(entry)
        for mode, row in entry["modes"].items():
            print(f"{name} {mode}: " + (", ".join(f"{TITLES[c]} {duration(stats['median_s'])}"
                                                   for c, stats in row["contenders"].items() if "median_s" in stats)
                                         or "nothing measured"), flush=True)
    for worker in workers:
        worker.close()
    report["load_average"] = (load_at_start, load_average())
    # the better of two readings: a busy moment on a shared machine can halve one of them
    peaks = [peak_at_start, gemm_peak_gflops(args.device, args.threads, peak_n, args.tf32)]
    report["gemm_peak_gflops"] = max((p for p in peaks if p), default=None)
    for entry in report["benchmarks"]:
        add_peak_fractions(entry, report["gemm_peak_gflops"])
    text = markdown(report)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))
    if args.markdown:
        write_text_atomic(args.markdown, text)
    if args.results:
        write_text_atomic(args.results, spliced(Path(args.results).read_text(), text))
    print("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
