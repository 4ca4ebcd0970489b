"""Image search and verification benchmarks: ``scale`` (synthetic embeddings) and ``held-out`` (real data).

    python benchmarks/search.py scale --json benchmarks/results/search_scale.json \
        --markdown benchmarks/results/search_scale.md
    python benchmarks/search.py held-out --data-dir ../shared/data --faces runs/faces/best.npz \
        --omniglot runs/omniglot/last.npz --json benchmarks/results/search_held_out.json \
        --markdown benchmarks/results/search_held_out.md

``scale``: tinysiam's exact search and FAISS's IVF-Flat and HNSW at growing
collection sizes. The embeddings are drawn like a trained model's: classes of
``--per-class`` images around random centres (``--dim`` is the omniglot28
preset's embedding size), and the queries are new images of random classes.
Measured per method and setting: build time, queries per second (median of 3 batches of
``--queries``), the latency of one query (median of 5), the index's memory,
and recall@k against tinysiam's exact search. The exact search's own recall is
measured against a float64 brute force on 100 queries. ``--smoke`` runs tiny
sizes in seconds (tests/test_search.py).

``held-out``: trained checkpoints on the classes of ``tinysiam train``'s
split that they never trained on (AT&T faces: the 10 test subjects; Omniglot:
the validation characters, so pass ``last.npz``, which was not chosen on
them), next to raw pixels.
- Search: every held-out image is searched among all the others exactly as
  ``tinysiam search`` does; precision@1 and recall@1/5/10 (some image of the
  same class among the first k).
- Verification (``--faces`` only): thresholds calibrated on the validation
  subjects, as training records them, applied to 2000 balanced pairs of the
  test subjects: the false-accept and false-reject rates they really give.
"""
import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time

import numpy as np

from tinysiam import nn
from tinysiam.app import image_index
from tinysiam.app.presets import get_preset
from tinysiam.app.records import portable
from tinysiam.app.trained import load_trained
from tinysiam.data.registry import load_split
from tinysiam.engine.backend import to_numpy
from tinysiam.evaluation import retrieval
from tinysiam.evaluation.calibration import calibrate
from tinysiam.evaluation.metrics import equal_error_rate
from tinysiam.serialization import write_text_atomic
from tinysiam.siamese.mining import PairSampler

IVF_NPROBES = (1, 4, 16, 64, 256)
HNSW_EF_SEARCHES = (16, 32, 64, 128, 256)


class Embeddings:
    """Class-structured synthetic embeddings: class centres N(0, 1) and each image its centre plus N(0, spread^2),
    in ``latent`` dimensions turned into ``dim`` by a random rotation (rank ``latent``, like trained embeddings,
    whose variance sits in fewer dimensions than they have; ``latent == dim`` is the hardest case)."""

    def __init__(self, n_classes, dim, latent, spread, seed):
        self.rng = np.random.default_rng(seed)
        self.centres = self.rng.standard_normal((n_classes, latent), dtype=np.float32)
        self.rotation = np.linalg.qr(self.rng.standard_normal((dim, latent)))[0].T.astype(np.float32)  # (latent, dim)
        self.spread = spread

    def draw(self, n):
        """(n, dim) float32 images of random classes, made in slices: 10^7 rows need no temporary of the whole."""
        rows = np.empty((n, self.rotation.shape[1]), dtype=np.float32)
        for start in range(0, n, 1 << 20):
            stop = min(n, start + (1 << 20))
            latent = self.centres[self.rng.integers(0, len(self.centres), stop - start)]
            latent += self.spread * self.rng.standard_normal(latent.shape, dtype=np.float32)
            rows[start:stop] = latent @ self.rotation
        return rows


def machine():
    """The CPU's model name and core count."""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.machine()
    return f"{model}, {os.cpu_count()} cores"


def recall(found, truth):
    """Mean share of each query's true k nearest that were found."""
    return float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, truth)]))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median_time(fn, repeat=3):
    """(median seconds of ``repeat`` runs after one untimed warm-up on a slice, the last run's result)."""
    fn(slice(0, 10))
    runs = [timed(lambda: fn(slice(None))) for _ in range(repeat)]
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


def one_query_ms(fn, queries):
    return 1000 * statistics.median(timed(lambda: fn(queries[i:i + 1]))[0] for i in range(5))


def index_file_mb(faiss, index):
    """The size of a FAISS index as written to a file: its memory, without a second copy in memory."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.faiss")
        faiss.write_index(index, path)
        return os.path.getsize(path) / 2 ** 20


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure_size(n, latent, spread, args):
    embeddings = Embeddings(max(1, n // args.per_class), args.dim, latent, spread, seed=n)
    items, queries = embeddings.draw(n), embeddings.draw(args.queries)
    k = args.k
    rows = []

    def exact(q):
        return retrieval.nearest(q, items, k)[0]

    seconds, truth = median_time(lambda rows: exact(queries[rows]))
    # float64 queries make the blocks' products float64: the reference the float32 search is checked against
    reference = retrieval.nearest(queries[:100].astype(np.float64), items, k)[0]
    rows.append({"method": "exact (tinysiam, NumPy)", "setting": f"blocks of {retrieval.BLOCK_PAIRS:,} scores",
                 "build_s": 0.0, "queries_per_s": len(queries) / seconds, "one_query_ms": one_query_ms(exact, queries),
                 "memory_mb": items.nbytes / 2 ** 20, "recall": recall(truth[:100], reference),
                 "recall_reference": "float64 brute force"})
    rows.append({"method": "exact (tinysiam, CuPy)", "not_run": "not measured: no GPU on this machine"})
    if not image_index.faiss_available():
        rows.append({"method": "FAISS", "not_run": "faiss-cpu is not installed"})
        return rows, peak_rss_mb()
    faiss = image_index.faiss_module()
    for method, sweep, option in (("ivf", IVF_NPROBES, "nprobe"), ("hnsw", HNSW_EF_SEARCHES, "ef_search")):
        name = {"ivf": "FAISS IVF-Flat", "hnsw": "FAISS HNSW-Flat"}[method]
        if method == "hnsw" and n > args.hnsw_max:
            rows.append({"method": name, "not_run": f"not run above {args.hnsw_max:,} images: build time "
                                                    "(see the smaller sizes) and memory"})
            continue
        build_s, (index, params) = timed(lambda: image_index.build_approximate(items, method))
        memory_mb = index_file_mb(faiss, index)
        for value in sweep:
            def approximate(q):
                return image_index.approximate_nearest(index, params, q, k, **{option: value})[0]

            seconds, found = median_time(lambda rows: approximate(queries[rows]))
            setting = ", ".join(f"{key} {v}" for key, v in params.items() if key not in ("method", option))
            rows.append({"method": name, "setting": f"{setting}, {option} {value}".lstrip(", "), "build_s": build_s,
                         "queries_per_s": len(queries) / seconds, "one_query_ms": one_query_ms(approximate, queries),
                         "memory_mb": memory_mb, "recall": recall(found, truth), "recall_reference": "exact search"})
    return rows, peak_rss_mb()


def scale_markdown(report):
    k = report["k"]
    lines = ["## Image search at scale", "",
             f"Synthetic {report['dim']}-d embeddings (the omniglot28 preset's size): classes of "
             f"{report['per_class']} images around N(0, 1) centres, {report['queries']} queries of random classes "
             f"(not in the index), k = {k}. Machine: {report['machine']}; load average {report['load_before']} "
             f"before, {report['load_after']} after (other work shares the 2 cores). Command: "
             f"`{report['command']}`. Recall@{k} is against tinysiam's exact search, whose own recall is against a "
             "float64 brute force (100 queries). Memory is the index's size (the embeddings for exact search, "
             "FAISS's index file); the process's peak RSS so far follows each size. Queries per second: the median "
             "of 3 runs of the whole batch, after a warm-up; one query: the median of 5."]
    for part in report["distributions"]:
        lines += ["", f"### Rank {part['latent']} (spread {part['spread']}: nearest-neighbour precision@1 about 80% "
                      "at 10^4 images)", "",
                  f"| images | method | setting | build (s) | queries/s | one query (ms) | memory (MB) | recall@{k} |",
                  "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for size in part["sizes"]:
            for row in size["rows"]:
                if "not_run" in row:
                    lines.append(f"| {size['images']:,} | {row['method']} | {row['not_run']} | | | | | |")
                    continue
                lines.append(f"| {size['images']:,} | {row['method']} | {row['setting']} | {row['build_s']:.1f} | "
                             f"{row['queries_per_s']:,.0f} | {row['one_query_ms']:.2f} | {row['memory_mb']:,.0f} | "
                             f"{row['recall']:.3f} |")
            lines.append(f"| {size['images']:,} | process peak RSS so far | {size['peak_rss_mb']:,.0f} MB | | | | | |")
    return "\n".join(lines) + "\n"


KS = (1, 5, 10)


class RawPixels(nn.Module):
    """The trivial baseline with the model interface ``calibrate`` uses: the image is its embedding, L2 distance."""

    head, metric = None, "l2"

    def embed(self, images):
        return images.reshape(len(images), -1)

    def score_embeddings(self, e1, e2):
        return -np.linalg.norm(e1 - e2, axis=1)


def split(config, data_dir):
    """(validation, held-out) LabelledImages of the checkpoint's training split at its preset's size."""
    _, val, test = load_split(config.data, get_preset(config.preset).input_size, config.seed, data_dir)
    return val, (val if test is None else test)


def applied(scorer, calibration, held_out, seed=1, n_pairs=2000):
    """The rates the validation thresholds give on held-out pairs."""
    left, right, same = PairSampler(held_out.labels, seed=seed).sample(n_pairs)
    embeddings = to_numpy(scorer.embed(held_out.images))
    scores = scorer.score_embeddings(embeddings[left], embeddings[right])
    same = same.astype(bool)

    def rates(threshold):
        accepted = scores >= threshold
        return {"false_accept": float(accepted[~same].mean()), "false_reject": float((~accepted[same]).mean())}

    return {"pairs": n_pairs, "held_out_eer": equal_error_rate(scores, same)[0],
            "at_eer_threshold": rates(calibration["eer_threshold"]),
            **{f"at_far_{key}": rates(t) for key, t in calibration["far_thresholds"].items()}}


def verification(model, val, held_out):
    result = {}
    for name, scorer in (("model", model), ("pixels", RawPixels())):
        calibration = calibrate(scorer, val.images, val.labels)
        result[name] = {"calibration": calibration, "held_out": applied(scorer, calibration, held_out)}
    return result


def evaluate(data, checkpoint, args):
    model, config, _ = load_trained(checkpoint)
    if config.data != data:
        raise SystemExit(f"--{data} {checkpoint} was trained on {config.data}")
    val, held_out = split(config, args.data_dir)
    start = time.perf_counter()
    entry = {"data": data, "checkpoint": portable(checkpoint), "preset": config.preset, "loss": config.loss,
             "held_out": "test subjects" if held_out is not val else "validation characters",
             "search": retrieval.retrieval_quality(model, held_out.images, held_out.labels, KS)}
    if data == "faces":
        entry["verification"] = verification(model, val, held_out)
    entry["seconds"] = round(time.perf_counter() - start, 1)
    print(f"{data}: done in {entry['seconds']} s", file=sys.stderr)
    return entry


def held_out_markdown(report):
    lines = ["## Search and verification on held-out real data", "",
             f"Command: `{report['command']}`. Each held-out image is searched among all the others, exactly as "
             "`tinysiam search` does; recall@k counts a query as found when an image of its class is among the "
             "first k.", "",
             "| data (held-out classes, images) | checkpoint | search by | precision@1 | recall@1 | recall@5 | "
             "recall@10 |", "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for entry in report["results"]:
        s = entry["search"]
        where = f"{entry['data']} ({entry['held_out']}: {s['classes']}, {s['images']})"
        for by, label in (("model", f"{entry['preset']} ({entry['loss']})"), ("pixels", "raw pixels, L2")):
            row = s[by]
            lines.append(f"| {where} | `{entry['checkpoint']}` | {label} | {row['precision_at_1']:.1%} | "
                         + " | ".join(f"{row[f'recall_at_{k}']:.1%}" for k in KS) + " |")
    for entry in report["results"]:
        if "verification" not in entry:
            continue
        lines += ["", f"Verification on {entry['data']}: thresholds calibrated on the validation subjects "
                      "(2000 pairs), applied to 2000 pairs of the held-out subjects.", "",
                  "| scores | validation EER | threshold | held-out false accepts | held-out false rejects | "
                  "held-out EER |", "| --- | ---: | --- | ---: | ---: | ---: |"]
        for by, label in (("model", entry["preset"]), ("pixels", "raw pixels, L2")):
            v = entry["verification"][by]
            calibration, held = v["calibration"], v["held_out"]
            points = [("equal error", "at_eer_threshold")] + [(f"FAR {float(key):.1%}", f"at_far_{key}")
                                                               for key in calibration["far_thresholds"]]
            for point, key in points:
                lines.append(f"| {label} | {calibration['eer']:.1%} | {point} | {held[key]['false_accept']:.1%} | "
                             f"{held[key]['false_reject']:.1%} | {held['held_out_eer']:.1%} |")
    return "\n".join(lines) + "\n"


def run_scale(args):
    if args.smoke:
        args.sizes, args.queries, args.hnsw_max = [2000, 5000], 50, 2000
    if len(args.latent) != len(args.spread):
        raise SystemExit("--latent and --spread need one value each per distribution")
    report = {"machine": machine(), "load_before": round(os.getloadavg()[0], 2), "dim": args.dim,
              "per_class": args.per_class, "queries": args.queries, "k": args.k, "distributions": []}
    for latent, spread in zip(args.latent, args.spread):
        part = {"latent": latent, "spread": spread, "sizes": []}
        for n in sorted(int(s) for s in args.sizes):
            rows, peak = measure_size(n, latent, spread, args)
            part["sizes"].append({"images": n, "rows": rows, "peak_rss_mb": peak})
            print(f"rank {latent}: {n:,} images done (peak RSS {peak:,.0f} MB)", file=sys.stderr)
        report["distributions"].append(part)
    report["load_after"] = round(os.getloadavg()[0], 2)
    return report, scale_markdown


def run_held_out(args):
    report = {"results": [evaluate(data, checkpoint, args)
                          for data, checkpoint in (("faces", args.faces), ("omniglot", args.omniglot)) if checkpoint]}
    return report, held_out_markdown


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="benchmark", required=True)
    scale = sub.add_parser("scale", help="exact search and FAISS on synthetic embeddings of growing size")
    scale.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6, 1e7])
    scale.add_argument("--dim", type=int, default=64)
    scale.add_argument("--per-class", type=int, default=20)
    scale.add_argument("--latent", type=int, nargs="+", default=[16, 64],
                       help="the rank of each distribution of embeddings (at most --dim)")
    scale.add_argument("--spread", type=float, nargs="+", default=[0.62, 1.25],
                       help="the within-class standard deviation of each (centres are N(0, 1)); the defaults make "
                            "nearest-neighbour precision@1 about 80%% at 10^4 images")
    scale.add_argument("--queries", type=int, default=1000)
    scale.add_argument("-k", type=int, default=10)
    scale.add_argument("--hnsw-max", type=int, default=1_000_000, help="largest size HNSW is built for")
    scale.add_argument("--smoke", action="store_true", help="tiny sizes: checks in seconds that everything runs")
    held_out = sub.add_parser("held-out", help="search and verification with trained checkpoints on real data")
    held_out.add_argument("--data-dir", required=True)
    held_out.add_argument("--faces", help="a checkpoint trained with --data faces")
    held_out.add_argument("--omniglot", help="a checkpoint trained with --data omniglot (last.npz)")
    for p in (scale, held_out):
        p.add_argument("--json")
        p.add_argument("--markdown")
    args = parser.parse_args(argv)
    report, markdown = {"scale": run_scale, "held-out": run_held_out}[args.benchmark](args)
    report["command"] = shlex.join(["python", "benchmarks/search.py", *portable(argv)])  # relative paths
    text = markdown(report)
    print(text)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))
    if args.markdown:
        write_text_atomic(args.markdown, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
