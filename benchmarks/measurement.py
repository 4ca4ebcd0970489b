"""Measurement: the worker processes, the timing loop, memory readings, the profiler and the machine.

- Each contender runs in a worker process of its own, started afresh for each
  benchmark: its own thread pools, and a peak-memory reading of its own.
- The workers take turns, one repetition each, so the paired ratio compares
  two runs made moments apart: a noisy neighbour slows both sides alike.
- Between turns the harness waits ``SETTLE_SECONDS``: after a matrix product
  OpenBLAS's worker threads keep spinning for about 0.1 s (measured here) and
  would steal a core from the next contender.
- Each turn runs its benchmark ``LEAD_IN_RUNS`` times untimed, then once
  timed: a step inside a training loop follows another step, not a pause (after
  the pause, cores that went idle are slow to wake: a tinysiam mini step took
  90 ms right after a 0.2 s pause, 50 ms right after another step).
- GPU timings synchronise the device before each reading of the clock.
"""
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from contenders import FRAMEWORKS, NotMeasured
from nets import benchmarks, labels, op_arrays

SETTLE_SECONDS = 0.15
ENTRY = Path(__file__).resolve().parent / "harness.py"  # what a worker process runs
PROFILE_RUNS = {"step": 3, "epoch": 1}  # runs under the profiler, after the timed ones
LEAD_IN_RUNS = {"epoch": 0}  # untimed runs just before each timed one, by mode (default 1): an epoch has its own


# ----- the worker process: one contender, commands on stdin, one JSON reply per line on stdout -------
@dataclass
class Case:
    """A loaded benchmark: a callable per mode, the tensors whose gradients are checked, and for the profile
    the functions outside the engine worth timing: (owner, attribute, label)."""
    modes: dict
    leaves: list
    parts: list = field(default_factory=list)


def build_case(contender, bench):
    if bench.kind == "step":
        step, params = contender.step(bench)
        return Case({"step": step}, params)
    if bench.kind == "epoch":
        epoch, params, parts = contender.epoch(bench)
        return Case({"epoch": epoch}, params, parts)
    arrays, grad = op_arrays(bench)
    leaves = {name: contender.tensor(array) for name, array in arrays.items()}
    forward = contender.op(bench, leaves, contender.constant(labels(bench)) if bench.kind == "loss" else None)
    grad = None if grad is None else contender.constant(grad)  # on the device before the clock starts

    def forward_and_backward():
        for leaf in leaves.values():  # fresh gradients each time, not accumulated ones
            contender.clear_grad(leaf)
        out = forward()
        contender.backward(out, grad)

    return Case({"forward": forward, "forward+backward": forward_and_backward}, list(leaves.values()))


def resident_mb(field="VmHWM"):
    """This process's resident memory in MB: its peak (VmHWM) or current (VmRSS) size on Linux.

    Elsewhere the peak comes from ru_maxrss and the current size is None.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024 / 1e6
    if field != "VmHWM":
        return None
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes on macOS, KiB elsewhere


def reset_peak_memory():
    """Restart the peak reading from the current size (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def limit_threads(threads):
    """Hold every BLAS/OpenMP pool of this process to ``threads`` (the environment already asks for it)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(threads)


def worker_main(name, device, threads, tf32):
    """Serve one contender: load a benchmark, run a mode once, report memory, profile."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints of the frameworks go to stderr, not into the replies

    def reply(**message):
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    try:
        contender = FRAMEWORKS[name](device, tf32)
    except ImportError as e:
        missing = e.name or str(e)
        return reply(unavailable=f"{name} not installed" if missing == name else f"{name}: {missing} not installed")
    except RuntimeError as e:
        return reply(unavailable=f"{name} on {device}: {e}")
    if name == "torch":
        contender.torch.set_num_threads(threads)
    limit_threads(threads)
    reply(ready=True)
    case = before = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["do"] == "load":
                case = None  # free the previous benchmark's arrays first
                bench = benchmarks(command["smoke"])[command["name"]]
                before = resident_mb("VmRSS")
                case = build_case(contender, bench)
                reset_peak_memory()  # the peak of the runs, not of building the model (float64 init arrays)
                reply(ok=True)
            elif command["do"] == "run":
                for _ in range(command["lead_in"]):  # untimed: the timed run follows another, as in a loop
                    case.modes[command["mode"]]()
                contender.synchronize()
                start = time.perf_counter()
                out = case.modes[command["mode"]]()
                contender.synchronize()
                seconds = time.perf_counter() - start
                loss = contender.value(out) if command["mode"] == "step" else None
                del out  # a loss still referenced would keep its graph's arrays alive into the next run
                dtypes = sorted({contender.grad_dtype(leaf) for leaf in case.leaves}) if command["mode"] != "forward" \
                    else None
                reply(seconds=seconds, loss=loss, grad_dtypes=dtypes)
            elif command["do"] == "memory":
                peak = resident_mb()
                reply(peak_rss_mb=peak, growth_mb=None if None in (peak, before) else peak - before,
                      gpu_mb=contender.gpu_memory_mb(), algorithms=getattr(contender, "new_algorithms", dict)())
            elif command["do"] == "profile":
                mode = command["mode"]
                reply(**profile(case.modes[mode], PROFILE_RUNS[mode], contender.synchronize, case.parts))
        except NotMeasured as e:
            reply(skipped=str(e))
        except Exception as e:  # reported to the harness, which skips this contender for this benchmark
            reply(error=f"{type(e).__name__}: {e}")
    return None


def profile(run, runs, synchronize, parts=()):
    """Milliseconds per run inside each op's forward and backward, the optimizer, the autograd walk, and ``parts``.

    Wraps ``forward``/``backward`` of every Function subclass and each (owner, attribute, label) of
    ``parts`` (outermost call only, so an op called inside another op or inside a part is counted once),
    ``Tensor.backward`` and ``Optimizer.step`` with timers. On a GPU each timer synchronises the device
    first and last, or it would time kernel launches only.
    """
    from tinysiam.engine.tensor import Function, Tensor
    from tinysiam.optim import Optimizer

    totals, depth = defaultdict(float), [0]

    def timed(original, label, outermost_only):
        def wrapper(*args, **kwargs):
            if outermost_only and depth[0]:
                return original(*args, **kwargs)
            depth[0] += outermost_only
            synchronize()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                synchronize()
                totals[label] += time.perf_counter() - start
                depth[0] -= outermost_only

        return wrapper

    classes, pending = [], list(Function.__subclasses__())
    while pending:
        cls = pending.pop()
        classes.append(cls)
        pending.extend(cls.__subclasses__())
    patches = [(cls, method, f"{cls.__name__}.{method}", True) for cls in classes
               for method in ("forward", "backward") if method in vars(cls)]
    patches += [(owner, attribute, label, True) for owner, attribute, label in parts]
    patches += [(Tensor, "backward", "Tensor.backward", False), (Optimizer, "step", "optimizer step", False)]
    originals = [(owner, attribute, vars(owner)[attribute]) for owner, attribute, _, _ in patches]
    for owner, attribute, label, outermost_only in patches:
        setattr(owner, attribute, timed(vars(owner)[attribute], label, outermost_only))
    try:
        start = time.perf_counter()
        for _ in range(runs):
            run()
        total = (time.perf_counter() - start) / runs
    finally:
        for owner, attribute, original in originals:
            setattr(owner, attribute, original)
    per_run = {label: seconds / runs * 1e3 for label, seconds in totals.items()}
    op_backward = sum(ms for label, ms in per_run.items()
                      if label.endswith(".backward") and label != "Tensor.backward")
    op_forward = sum(ms for label, ms in per_run.items() if label.endswith(".forward"))
    outside_ops = ["Tensor.backward", "optimizer step"] + [label for _, _, label in parts]
    rows = [(label, ms) for label, ms in per_run.items() if label != "Tensor.backward"]
    rows.append(("autograd walk (Tensor.backward minus the ops' backward: gradient sums, leaf copies)",
                 per_run.get("Tensor.backward", 0) - op_backward))
    rows.append(("the rest (module calls, argument checks, graph recording)",
                 total * 1e3 - op_forward - sum(per_run.get(label, 0) for label in outside_ops)))
    return {"run_ms": total * 1e3, "runs": runs, "rows": sorted(rows, key=lambda row: -row[1])}


class Worker:
    """The harness's handle on one worker process."""

    def __init__(self, contender, device, threads, tf32):
        self.contender = contender
        command = [sys.executable, str(ENTRY), "--worker", contender, "--device", device,
                   "--threads", str(threads)] + (["--tf32"] if tf32 else [])
        env = worker_environment(threads, tf32)
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.unavailable = None

    def greet(self):
        """Wait for the worker's first line: False (reason in ``unavailable``) if its contender cannot run here."""
        hello = self._read()
        self.unavailable = hello.get("unavailable") or hello.get("error")
        return not self.unavailable

    def ask(self, **command):
        if self.process.poll() is not None:
            return {"error": f"worker exited with code {self.process.returncode}"}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            return {"error": f"worker exited with code {self.process.wait()} (see its stderr above)"}
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def worker_environment(threads, tf32=False):
    """The environment of a child process: thread counts set before any library starts its pools."""
    env = dict(os.environ, CUPY_TF32="1" if tf32 else "0")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[variable] = str(threads)
    package_parent = str(Path(__file__).resolve().parent.parent)  # works from a checkout, installed or not
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env


def start_workers(contenders, args, skipped, old_workers):
    """Fresh worker processes for the contenders not known to be unavailable; reports the unavailable ones."""
    for worker in old_workers:
        worker.close()
    started = [Worker(c, args.device, args.threads, args.tf32) for c in contenders if c not in skipped]
    workers = []
    for worker in started:
        if worker.greet():
            workers.append(worker)
        else:
            skipped[worker.contender] = worker.unavailable
            print(f"{worker.unavailable}: column skipped", flush=True)
            worker.close()
    return workers


# ----- measuring one benchmark -------------------------------------------------------------------
def measure(bench, workers, repeat, warmup, smoke, settle, profile_tinysiam):
    """Load ``bench`` in every worker, then time each mode, the workers taking turns run by run."""
    results, active = {}, []
    for worker in workers:
        answer = worker.ask(do="load", name=bench.name, smoke=smoke)
        if "error" in answer or "skipped" in answer:
            results[worker.contender] = {"skipped": answer.get("skipped") or f"error: {answer['error'][:300]}"}
        else:
            results[worker.contender] = {"modes": {}}
            active.append(worker)
    for mode in bench.modes:
        for worker in active:
            results[worker.contender]["modes"][mode] = {"times": []}
        for r in range(warmup + repeat):
            turn = r % len(active) if active else 0
            for worker in active[turn:] + active[:turn]:  # rotate who goes first
                time.sleep(settle)  # let the previous contender's spinning BLAS threads fall asleep
                # no lead-in in the first turn: its step starts from the shared weights (a warm-up turn unless
                # --warmup 0), and the losses must agree across contenders
                lead_in = 0 if smoke or r == 0 else LEAD_IN_RUNS.get(mode, 1)
                answer = worker.ask(do="run", mode=mode, lead_in=lead_in)
                if "error" in answer:  # this contender leaves the benchmark, the others go on
                    active.remove(worker)
                    results[worker.contender] = {"skipped": f"error: {answer['error'][:300]}"}
                    continue
                entry = results[worker.contender]["modes"][mode]
                if r == 0:
                    entry.update(first_loss=answer["loss"], grad_dtypes=answer["grad_dtypes"])
                if r >= warmup:
                    entry["times"].append(answer["seconds"])
    for worker in active:
        results[worker.contender].update(worker.ask(do="memory"))
        if profile_tinysiam and bench.kind in PROFILE_RUNS and worker.contender == "tinysiam":
            results["tinysiam"]["profile"] = worker.ask(do="profile", mode=bench.kind)
    return results


# ----- the machine ---------------------------------------------------------------------------------
GEMM_CODE = """
import time, {module} as xp
a = xp.random.random(({n}, {n})).astype(xp.float32); b = a.copy()
def timed():
    {sync}; start = time.perf_counter(); a @ b; {sync}
    return time.perf_counter() - start
timed()
print(2 * {n} ** 3 / min(timed() for _ in range(5)) / 1e9)
"""


def gemm_peak_gflops(device, threads, n, tf32):
    """float32 GEMM GFLOP/s of an n x n x n product, best of 5 (NumPy on CPU, CuPy on GPU), or None."""
    module, sync = ("numpy", "pass") if device == "cpu" else ("cupy", "xp.cuda.Device().synchronize()")
    done = subprocess.run([sys.executable, "-c", GEMM_CODE.format(module=module, n=n, sync=sync)],
                          env=worker_environment(threads, tf32), capture_output=True, text=True)
    return float(done.stdout) if done.returncode == 0 else None


def machine_info(threads, device):
    import importlib.metadata as metadata

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    versions = {"python": platform.python_version()}
    for package in ("numpy", "torch", "dezero", "cupy", "cupy-cuda12x", "cupy-cuda11x", "cupy-cuda13x"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "platform": platform.platform(),
            "versions": versions, "blas": blas_info()}
    if device == "gpu":
        try:
            import cupy

            info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        except Exception:  # no CuPy, or no device: the report says which columns were skipped
            pass
    return info


def blas_info():
    """NumPy's BLAS: name, version and kernel from threadpoolctl if installed, else from numpy's build config."""
    try:
        from threadpoolctl import threadpool_info

        return "; ".join(f"{pool['internal_api']} {pool['version']} ({pool.get('architecture')})"
                         for pool in threadpool_info() if pool["user_api"] == "blas")
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):  # NumPy < 1.26 prints its config only
        return "unknown"


def memory_method():
    if Path("/proc/self/clear_refs").exists():
        return "VmHWM of /proc/self/status, reset through /proc/self/clear_refs once the model is built"
    return "ru_maxrss: the whole process's peak, model building included"


def load_average():
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return None
