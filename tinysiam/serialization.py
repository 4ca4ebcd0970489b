"""Saving models and checkpoints as ``.npz`` files, atomically.

Arrays are stored under their dotted names ("model/tower.0.weight",
"optim/param3.velocity"); anything else (epoch, config, history) is JSON in
the entry "meta". Files are read with ``allow_pickle=False``: loading a file
never runs code. Writing goes to a temporary file in the same folder, renamed
over the target only once it is complete, so a crash or an error mid-way
leaves the previous file intact.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .backend import to_numpy


def write_npz_atomic(path, arrays):
    """Write ``arrays`` (name -> array) to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{name: to_numpy(a) for name, a in arrays.items()})
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_npz(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {name: f[name] for name in f.files}
    except (ValueError, OSError) as e:
        raise ValueError(f"{path} is not a readable tinysiam .npz file: {e}") from None


def save(module_or_state, path):
    """Save a module's state_dict (or a state dict) to ``path``."""
    state = module_or_state.state_dict() if hasattr(module_or_state, "state_dict") else module_or_state
    write_npz_atomic(path, state)


def load(module, path, strict=True):
    """Load parameters saved by ``save`` into ``module``; returns the module."""
    module.load_state_dict(read_npz(path), strict=strict)
    return module


def save_checkpoint(path, model, optimizer=None, **meta):
    """Model, optimizer state and JSON-serialisable ``meta`` (epoch, config, history) in one file."""
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    write_npz_atomic(path, arrays)


def read_checkpoint_meta(path):
    arrays = read_npz(path)
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a tinysiam checkpoint (no 'meta' entry)")
    return json.loads(arrays["meta"].tobytes().decode())


def load_checkpoint(path, model=None, optimizer=None):
    """Restore ``model`` and ``optimizer`` (either may be None) from ``path``; returns the meta dict."""
    arrays = read_npz(path)
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a tinysiam checkpoint (no 'meta' entry)")
    if model is not None:
        state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
        try:
            model.load_state_dict(state)
        except (KeyError, ValueError) as e:
            raise ValueError(f"checkpoint {path} does not fit this model: {e}") from None
    if optimizer is not None:
        optimizer.load_state_dict({k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})
    return json.loads(arrays["meta"].tobytes().decode())
