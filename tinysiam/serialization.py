"""Saving models and checkpoints as ``.npz`` files, atomically.

Arrays are stored under their dotted names ("model/tower.0.weight",
"optim/param3.velocity"); anything else (epoch, config, history) is JSON in
the entry "meta". Files are read with ``allow_pickle=False``: loading a file
never runs code. Writing goes to a temporary file in the same folder, renamed
over the target only once it is complete, so a crash or an error mid-way
leaves the previous file intact.
"""
import contextlib
import json
import os
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .engine.backend import to_numpy

TEMPORARY_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_open(path, mode):
    """Yield a temporary file next to ``path``; on success rename it over ``path``, on error delete it.

    ``mode`` is "x" (text) or "xb" (bytes). A process killed mid-write (SIGKILL)
    leaves only its ``.NAME.XXXXXXXX.tmp`` file, which ``remove_orphan_temporaries`` deletes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")  # unique per writer
    try:
        with open(tmp, mode) as f:  # plain open: the file gets the usual permissions (umask)
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_npz_atomic(path, arrays):
    """Write ``arrays`` (name -> array) to ``path`` via a temporary file and a rename.

    The file is what ``np.savez`` writes (a zip of one ``NAME.npy`` per entry), written entry by entry so that
    every name is kept, also one that is a keyword of ``np.savez`` itself (``file``, ``allow_pickle``).
    """
    arrays = {name: to_numpy(a) for name, a in arrays.items()}
    for name, a in arrays.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"cannot save an entry named {name!r}: names must be non-empty strings")
        if a.dtype.kind not in "biuf":  # anything else would need pickle to read back
            raise TypeError(f"cannot save entry {name!r} with dtype {a.dtype}: only numeric arrays are stored")
    with atomic_open(path, "xb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, a in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename."""
    with atomic_open(path, "x") as f:
        f.write(text)


def write_bytes_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` via a temporary file in the same folder and a rename."""
    with atomic_open(path, "xb") as f:
        f.write(data)


def remove_orphan_temporaries(folder):
    """Delete the temporary files that writers killed mid-write left in ``folder``; returns their names.

    Call it only while no other process writes there (a training run does, holding its folder's lock).
    """
    orphans = [p for p in Path(folder).glob(f".*.*{TEMPORARY_SUFFIX}") if p.is_file()]
    for p in orphans:
        p.unlink(missing_ok=True)
    return sorted(p.name for p in orphans)


def read_npz(path):
    """name -> array of an ``.npz`` file, read without pickle; a damaged file is a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # np.load reads a .npy file as one array
            raise ValueError("it holds a single .npy array, not an .npz archive of named arrays")
        with loaded as f:
            return {name: f[name] for name in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as e:  # damaged
        raise ValueError(f"{path} is not a readable tinysiam .npz file (damaged or of another kind): {e}") from None


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
    try:
        meta_json = json.dumps(meta)
    except TypeError as e:
        raise TypeError(f"save_checkpoint: meta must be JSON-serialisable ({e})") from None
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optim/{k}": np.asarray(v) for k, v in optimizer.state_dict().items()})
    arrays["meta"] = np.frombuffer(meta_json.encode(), dtype=np.uint8)
    write_npz_atomic(path, arrays)


def read_checkpoint(path):
    """(arrays, meta) of a checkpoint: every entry, and the "meta" entry read as a JSON object."""
    arrays = read_npz(path)
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a tinysiam checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: the checkpoint's metadata is damaged ({e})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the checkpoint's metadata is not a JSON object")
    return arrays, meta


def checkpoint_entries(arrays, prefix):
    """The entries of a checkpoint under ``prefix`` ("model/" or "optim/"), without the prefix."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def read_checkpoint_meta(path):
    """The meta dict of a checkpoint (epoch, config, history), without a model."""
    return read_checkpoint(path)[1]


def update_checkpoint_meta(path, **changes):
    """Rewrite the checkpoint at ``path`` (atomically) with ``changes`` merged into its meta; arrays unchanged."""
    arrays, meta = read_checkpoint(path)
    try:
        arrays["meta"] = np.frombuffer(json.dumps({**meta, **changes}).encode(), dtype=np.uint8)
    except TypeError as e:
        raise TypeError(f"update_checkpoint_meta: the changes must be JSON-serialisable ({e})") from None
    write_npz_atomic(path, arrays)


def load_checkpoint(path, model=None, optimizer=None):
    """Restore ``model`` and ``optimizer`` (either may be None) from ``path``; returns the meta dict.

    A model or optimizer whose names or shapes do not fit the file raises
    ValueError and is left unchanged.
    """
    arrays, meta = read_checkpoint(path)
    model_state, optim_state = checkpoint_entries(arrays, "model/"), checkpoint_entries(arrays, "optim/")
    if optimizer is not None and not optim_state:
        raise ValueError(f"checkpoint {path} holds no optimizer state (it was saved without an optimizer)")
    if model is not None:
        try:
            model.load_state_dict(model_state)
        except ValueError as e:
            raise ValueError(f"checkpoint {path} does not fit this model: {e}") from None
    if optimizer is not None:
        try:
            optimizer.load_state_dict(optim_state)
        except ValueError as e:
            raise ValueError(f"checkpoint {path} does not fit this optimizer: {e}") from None
    return meta
