"""Result records: one JSON file per reported result, so that every number can be traced to how it was made.

``write_record("omniglot-lake", {"accuracy": 0.9}, seconds=1500.2)`` writes
``results/omniglot-lake.json`` (atomically, replacing an older record of the
same name) with the command line, the git commit of the checkout (and whether
it had uncommitted changes), the seconds, the metrics, the date (UTC) and a
summary of the machine. Absolute paths in the command and the metrics are
written relative to the checkout (``../shared/data``), so a record names no
folder that exists only on the machine that made it.
"""
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..serialization import write_text_atomic

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
CHECKOUT = Path(__file__).resolve().parents[2]  # the source checkout, for an editable install


def write_record(name, metrics, seconds, command=None, out_dir="results", checkout=CHECKOUT):
    """Write ``out_dir/<name>.json`` and return its path.

    ``metrics`` is a dict of JSON values (NumPy numbers and arrays are
    converted); ``command`` a list of arguments or a string, by default the
    running program's (``sys.argv``, the program by its base name).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be a plain file name (letters, digits, '.', '_', '-'), got {name!r}")
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number)) or not seconds >= 0:
        raise ValueError(f"seconds must be a number >= 0, got {seconds!r}")
    if command is None:
        command = [Path(sys.argv[0]).name, *sys.argv[1:]]
    command = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
    record = {
        "command": shlex.join(portable(part, checkout) for part in command),
        "git": git_state(checkout),
        "seconds": round(float(seconds), 3),
        "metrics": portable(metrics, checkout),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_summary(),
    }
    path = Path(out_dir) / f"{name}.json"
    write_text_atomic(path, json.dumps(record, indent=1, default=_json_value) + "\n")
    return path


def portable(value, checkout=CHECKOUT):
    """``value`` with every absolute path in it (a string, or inside lists and dicts; also ``--option=/path``)
    made relative to ``checkout``."""
    if isinstance(value, dict):
        return {key: portable(item, checkout) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(item, checkout) for item in value]
    if isinstance(value, str):
        prefix, _, path = value.rpartition("=") if value.startswith("--") else ("", "", value)
        if os.path.isabs(path):
            return f"{prefix}{'=' if prefix else ''}{os.path.relpath(path, checkout)}"
    return value


def _json_value(value):
    """NumPy numbers and arrays as plain JSON values; anything else is an error naming its type."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"metrics hold a {type(value).__name__}, which is not a JSON value: {value!r}")


def git_state(checkout=CHECKOUT):
    """{"commit": full hash, "dirty": uncommitted changes to tracked files} of ``checkout``, or None outside git."""
    def git(*args):
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True, timeout=10)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):  # no git on this machine
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def machine_summary():
    """What the seconds were measured on: CPU model and count, OS, Python and NumPy versions."""
    return {
        "cpu": _cpu_model() or platform.processor() or platform.machine(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def _cpu_model():
    """The CPU's model name on Linux (platform.processor() is often empty there), else None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
