"""The report: per-benchmark statistics and ratios, the targets, and the Markdown tables."""
import statistics

from contenders import TITLES
from nets import FLOP_FACTOR, LOSS_TEXT, forward_flops, net_text

# (target, benchmark, mode, peer, limit on tinysiam's time / the peer's): the CPU targets, float32, 2 threads,
# judged on tinysiam as a library (no allocator retuning)
TARGETS = [
    ("omniglot28 step: tinysiam time <= 0.9 x PyTorch's", "step_omniglot28", "step", "torch", 0.9),
    ("mini step: tinysiam time <= 1.0 x PyTorch's", "step_mini", "step", "torch", 1.0),
    ("Koch step: tinysiam time <= 0.6 x PyTorch's", "step_koch", "step", "torch", 0.6),
    ("omniglot28 epoch of tinysiam train: time <= 0.9 x PyTorch's loop", "epoch_omniglot28", "epoch", "torch", 0.9),
] + [(f"{title} step: DeZero >= 3 x slower than tinysiam", f"step_{name}", "step", "dezero", 1 / 3)
     for name, title in (("mini", "mini"), ("omniglot28", "omniglot28"), ("faces", "faces"), ("koch", "Koch"))]
KOCH_MEMORY_TARGET_MB = 1500  # 1.5 GB
BEGIN, END = "<!-- tinysiam bench: begin -->", "<!-- tinysiam bench: end -->"  # what --results replaces


def add_peak_fractions(entry, peak_gflops):
    """Each contender's GFLOP/s in ``entry`` as a fraction of the machine's GEMM peak (None where unmeasured)."""
    for row in entry["modes"].values():
        for stats in row["contenders"].values():
            if "gflops" in stats:
                stats["fraction_of_gemm_peak"] = stats["gflops"] / peak_gflops if peak_gflops else None


def summarise(bench, results):
    """The report entry of one benchmark: per mode, each contender's statistics and the ratios to the peers."""
    entry = {"benchmark": bench.name, "kind": bench.kind, "settings": bench.settings, "modes": {}, "memory": {}}
    if bench.kind in ("step", "epoch"):
        entry["net"] = net_text(bench)
    flops = forward_flops(bench)
    for contender, result in results.items():
        if "skipped" in result:
            entry["memory"][contender] = {"skipped": result["skipped"]}
            continue
        entry["memory"][contender] = {key: result.get(key) for key in ("peak_rss_mb", "growth_mb", "gpu_mb")}
        if result.get("algorithms"):
            entry["algorithms"] = result["algorithms"]
        if "profile" in result:
            entry["profile"] = result["profile"]
    for mode in bench.modes:
        row = entry["modes"][mode] = {"contenders": {}, "ratios": {}}
        work = flops and flops * FLOP_FACTOR[mode]
        for contender, result in results.items():
            times = result.get("modes", {}).get(mode, {}).get("times")
            if not times:
                row["contenders"][contender] = {"skipped": result.get("skipped", "not run")}
                continue
            stats = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "times": times,
                     **{k: result["modes"][mode][k] for k in ("first_loss", "grad_dtypes")}}
            if work:
                stats["gflops"] = work / stats["median_s"] / 1e9
            if mode == "epoch":
                stats["images_per_s"] = bench.settings["images"] * bench.settings["steps"] / stats["median_s"]
            row["contenders"][contender] = stats
        times = {contender: stats.get("times") for contender, stats in row["contenders"].items()}
        for mine, theirs in RATIOS:
            if times.get(mine) and times.get(theirs):
                row["ratios"][f"{mine}/{theirs}"] = ratio(times[mine], times[theirs])
    return entry


RATIOS = [("tinysiam", "torch"), ("tinysiam", "dezero"), ("tinysiam_retuned", "tinysiam")]  # (numerator, denominator)


def ratio(mine, theirs):
    """Time ratio of two contenders: of the medians, and the median of the run-by-run ratios."""
    paired = [a / b for a, b in zip(mine, theirs)]  # runs made one after the other
    return {"of_medians": statistics.median(mine) / statistics.median(theirs), "paired": paired,
            "median_paired": statistics.median(paired)}


def evaluate_targets(report):
    """[(target, measured, verdict)] for the benchmarks in this report (CPU runs only)."""
    entries = {entry["benchmark"]: entry for entry in report["benchmarks"]}
    verdicts = []
    for target, name, mode, peer, limit in TARGETS:
        measured = entries.get(name, {}).get("modes", {}).get(mode, {}).get("ratios", {}).get(f"tinysiam/{peer}")
        if measured is None:
            verdicts.append((target, "not measured", "-"))
            continue
        verdict = "met" if measured["of_medians"] <= limit else "missed"
        if peer == "torch":
            text = f"tinysiam / PyTorch = {measured['of_medians']:.2f} (paired {measured['median_paired']:.2f})"
        else:
            text = f"DeZero / tinysiam = {1 / measured['of_medians']:.2f} (paired {1 / measured['median_paired']:.2f})"
        verdicts.append((target, text, verdict))
    peak = entries.get("step_koch", {}).get("memory", {}).get("tinysiam", {}).get("peak_rss_mb")
    verdicts.append(("Koch step: tinysiam peak memory <= 1.5 GB", "not measured" if peak is None else
                     f"{peak:.0f} MB (whole process, during the steps)", "-" if peak is None else
                     "met" if peak <= KOCH_MEMORY_TARGET_MB else "missed"))
    return verdicts


def duration(t, *spread):
    """``t`` in s or ms, then (min-max) in the same unit if given."""
    scale, unit, digits = (1, "s", 2) if t >= 1 else (1e3, "ms", 1) if t >= 0.01 else (1e3, "ms", 2)
    text = f"{t * scale:.{digits}f} {unit}"
    return text + (f" ({spread[0] * scale:.{digits}f}-{spread[1] * scale:.{digits}f})" if spread else "")


def spliced(page, tables):
    """``page`` with the text between its BEGIN and END lines replaced by ``tables``, headings one level down."""
    head, begin, rest = page.partition(BEGIN + "\n")
    _, end, tail = rest.partition(END + "\n")
    if not (begin and end):
        raise SystemExit(f"tinysiam bench: --results: the page has no lines {BEGIN!r} ... {END!r} to replace")
    demoted = "\n".join("#" + line if line.startswith("#") else line for line in tables.splitlines())
    return f"{head}{begin}{demoted}\n{end}{tail}"


def rate_text(stats):
    """GFLOP/s and its share of the GEMM peak: "41.2 (22%)"."""
    if stats.get("gflops") is None:
        return "-"
    fraction = stats.get("fraction_of_gemm_peak")
    return f"{stats['gflops']:.1f}" + ("" if fraction is None else f" ({fraction:.0%})")


def _mb(value):
    return "-" if value is None else f"{value:.0f}"


def markdown(report):
    info, contenders = report["machine"], report["contenders"]
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [f"# tinysiam benchmarks: {report['device']}, {report['threads']} threads", "",
             f"Produced by `{report['command']}` ({report['date']}"
             + (f", commit {report['git']['commit'][:7]}{' with uncommitted changes' if report['git']['dirty'] else ''}"
                if report.get("git") else "") + ").", "",
             f"- Machine: {info['cpu']}, {info['cores']} cores; {info['platform']}; {versions}; BLAS: {info['blas']}"
             + (f"; GPU: {info['gpu']}" if info.get("gpu") else "") + ".",
             "- Arithmetic: " + ("TF32 allowed for every contender (--tf32)." if report["tf32"] else
                                 "strict float32 for every contender."),
             "- Allocator: every contender with the stock allocator; the column \"tinysiam, retuned malloc\" "
             "runs tinysiam's training steps and epoch after `backend.reuse_freed_memory()` (glibc keeps large "
             "freed blocks), to show what that process-wide setting still adds.",
             "- float32 GEMM peak measured in this run: " + (f"{report['gemm_peak_gflops']:.0f} GFLOP/s "
             f"({report['gemm_peak_source']})." if report["gemm_peak_gflops"] else "not measured."),
             f"- Timing: median (min-max) of {report['repeat']} runs after {report['warmup']} warm-up runs; the "
             f"contenders take turns run by run, {report['settle_s']} s apart, each timed run right after an untimed "
             "one (as in a training loop; an epoch runs its own steps). Paired ratio: median of the per-run ratios.",
             "- 1-minute load average at start / end: " + " / ".join(
                 "-" if load is None else f"{load:.2f}" for load in report["load_average"])
             + " (other work on the machine slows every contender).",
             "- FLOPs: 2*M*N*K of the convolution and dense-layer GEMMs; forward+backward, step and epoch count 3x "
             "the forward. They are the direct method's: tinysiam's Winograd and FFT convolutions do fewer "
             "multiplications, so their effective rate can pass the GEMM peak. The share of the GEMM peak travels "
             "between machines better than a time."]
    lines += [f"- {reason}: column skipped." for reason in report["skipped"].values()]
    lines += nets_section(report)
    titles = [TITLES[c] for c in contenders]
    ratios = [(mine, theirs) for mine, theirs in RATIOS if mine in contenders and theirs in contenders]
    lines += ["", "## Time", "", "| benchmark | mode | " + " | ".join(titles)
              + "".join(f" | {TITLES[mine]} / {TITLES[theirs]}" for mine, theirs in ratios)
              + " | GFLOP/s and % of GEMM peak (" + " / ".join(titles) + ") |",
              "| --- " * (3 + len(titles) + len(ratios)) + "|"]
    for entry in report["benchmarks"]:
        for mode, row in entry["modes"].items():
            cells = []
            for c in contenders:
                stats = row["contenders"].get(c, {})
                cells.append(duration(stats["median_s"], stats["min_s"], stats["max_s"]) if "median_s" in stats
                             else stats.get("skipped", "-"))
            for mine, theirs in ratios:
                measured = row["ratios"].get(f"{mine}/{theirs}")
                cells.append(f"{measured['of_medians']:.2f} (paired {measured['median_paired']:.2f})" if measured
                             else "-")
            rates = [rate_text(row["contenders"].get(c, {})) for c in contenders]
            cells.append(" / ".join(rates) if any(rate != "-" for rate in rates) else "-")
            lines.append(f"| {entry['benchmark']} | {mode} | " + " | ".join(cells) + " |")
    lines += end_to_end(report)
    lines += ["", "## Peak memory", "",
              "Peak resident set of each contender's process during the benchmark's runs, minus its size before "
              f"the benchmark's arrays and model were built, in MB ({report['memory_method']}); in parentheses the "
              "peak itself, interpreter and framework included."
              + (" GPU: memory held by the framework's caching allocator (PyTorch: peak reserved; CuPy: pool size)."
                 if report["device"] == "gpu" else ""), "",
              "| benchmark | " + " | ".join(titles) + " |", "| --- " * (1 + len(titles)) + "|"]
    for entry in report["benchmarks"]:
        cells = []
        for c in contenders:
            memory = entry["memory"].get(c, {})
            cell = "-" if "skipped" in memory else f"{_mb(memory.get('growth_mb'))} ({_mb(memory.get('peak_rss_mb'))})"
            cells.append(cell + (f"; GPU {_mb(memory['gpu_mb'])}" if memory.get("gpu_mb") is not None else ""))
        lines.append(f"| {entry['benchmark']} | " + " | ".join(cells) + " |")
    lines += same_computation(report)
    lines += algorithms_section(report)
    if report["device"] == "cpu":
        lines += ["", "## Targets (CPU, float32" + ("" if report["threads"] == 2 else
                  f"; the targets are stated for 2 threads, this run used {report['threads']}") + ")", "",
                  "| target | measured | verdict |", "| --- | --- | --- |"]
        lines += [f"| {target} | {measured} | {verdict} |" for target, measured, verdict in evaluate_targets(report)]
    for entry in report["benchmarks"]:
        lines += profile_section(entry)
    return "\n".join(lines) + "\n"


def nets_section(report):
    """Markdown lines: what each training step and epoch trains."""
    entries = [e for e in report["benchmarks"] if "net" in e]
    if not entries:
        return []
    lines = ["", "## The trained nets", "",
             "Each step trains a tinysiam preset (`tinysiam/app/presets.py`) from the same initial weights in every "
             "framework; the PyTorch and DeZero nets are built from a layer-by-layer description of the preset. "
             "BatchNorm runs in training mode.", "", "| benchmark | preset, images per step | loss | optimizer | "
             "layers |", "| --- | --- | --- | --- | --- |"]
    for entry in entries:
        s = entry["settings"]
        images = f"{s['images']} images" + (f", {s['steps']} steps" if "steps" in s else "")
        lines.append(f"| {entry['benchmark']} | {s['preset']}, {images} | {LOSS_TEXT[s['loss']]} | "
                     f"{s['optimizer']} (lr 1e-3{', momentum 0.9' if s['optimizer'] == 'sgd' else ''}) | "
                     f"{entry['net']} |")
    return lines


def end_to_end(report):
    """Markdown lines: images per second of each training loop over one epoch."""
    entries = [e for e in report["benchmarks"] if "epoch" in e["modes"]]
    lines = []
    for entry in entries:
        s, row = entry["settings"], entry["modes"]["epoch"]
        measured = [(TITLES[c], stats["images_per_s"]) for c, stats in row["contenders"].items()
                    if "images_per_s" in stats]
        lines += ["", f"## End to end: {entry['benchmark']}", "",
                  f"One epoch of {s['steps']} steps of {s['images']} images ({s['preset']}, {LOSS_TEXT[s['loss']]}, "
                  f"{s['optimizer']}): sampling of a class-balanced batch, Koch's affine augmentation, the step; "
                  "no validation. tinysiam runs `tinysiam train`'s own loop (`Trainer`); PyTorch a loop with the "
                  "same batches, augmentation, miner, loss and optimizer. The images are random: the work does "
                  "not depend on the pixels.", "", "| contender | images/s |", "| --- | --- |"]
        lines += [f"| {title} | {rate:.0f} |" for title, rate in measured]
    return lines


def algorithms_section(report):
    """Markdown lines: the convolution algorithm tinysiam's conv2d chose for each layer shape it met."""
    rows = [(entry["benchmark"], layer, name) for entry in report["benchmarks"]
            for layer, name in entry.get("algorithms", {}).items()]
    if not rows:
        return []
    return ["", "## Convolution algorithms tinysiam chose", "",
            "`conv2d`'s default, `algorithm=\"auto\"`, picks by the layer's shape alone "
            "(`engine.conv_algorithms.by_shape`): "
            "im2col for fewer than 16 input channels, Winograd for other 3x3 stride-1 layers, FFT for other stride-1 "
            "kernels larger than 1x1, im2col for the rest; `\"benchmark\"` (timing the candidates once per shape) "
            "is the opt-in alternative.", "", "| benchmark | layer | algorithm |", "| --- | --- | --- |"] + \
        [f"| {name} | {layer} | {algorithm} |" for name, layer, algorithm in rows]


def profile_section(entry):
    """Markdown lines: the per-op profile of one step or epoch, if it was profiled."""
    if "rows" not in entry.get("profile", {}):
        return []
    total = entry["profile"]["run_ms"]
    what = "One step" if entry["kind"] == "step" else f"One epoch ({entry['settings']['steps']} steps)"
    lines = ["", f"## Where the time goes: tinysiam {entry['benchmark']}", "",
             f"{what} took {total:.1f} ms under the profiler (timers around every op's forward and backward, the "
             "autograd walk and the optimizer" + (", and the training loop's parts" if entry["kind"] == "epoch"
                                                    else "") + ").", "",
             "| part | ms | share |", "| --- | --- | --- |"]
    rows = [(label, ms) for label, ms in entry["profile"]["rows"] if ms >= 0.01 * total]
    small = [ms for label, ms in entry["profile"]["rows"] if ms < 0.01 * total]
    rows += [(f"{len(small)} other parts, each under 1%", sum(small))] if small else []
    return lines + [f"| {label} | {ms:.1f} | {ms / total:.0%} |" for label, ms in rows]


def same_computation(report):
    """Markdown lines: the first-step losses side by side, and any gradient that is not float32."""
    contenders = report["contenders"]
    lines = ["", "## Same computation", "", "First training step from the shared weights (the loss before any "
             "update) and the dtypes of the gradients:", "",
             "| benchmark | " + " | ".join(f"{TITLES[c]} loss" for c in contenders) + " | gradient dtypes |",
             "| --- " * (2 + len(contenders)) + "|"]
    wrong = []
    for entry in report["benchmarks"]:
        for mode, row in entry["modes"].items():
            for c, stats in row["contenders"].items():
                if stats.get("grad_dtypes") not in (None, ["float32"]):
                    wrong.append(f"- {entry['benchmark']} {mode}: {TITLES[c]} gradients are {stats['grad_dtypes']}")
        step = entry["modes"].get("step")
        if step:
            losses = [step["contenders"].get(c, {}).get("first_loss") for c in contenders]
            dtypes = sorted({d for stats in step["contenders"].values() for d in stats.get("grad_dtypes") or []})
            lines.append(f"| {entry['benchmark']} | " + " | ".join("-" if v is None else f"{v:.6f}" for v in losses)
                         + f" | {', '.join(dtypes) or '-'} |")
    return lines + (["", "Not float32:"] + wrong if wrong else ["", "Every gradient of every benchmark was float32."])
