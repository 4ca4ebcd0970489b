"""A training run's folder is a unit: one writer at a time, never replaced by accident, history and checkpoint in step.

- **Lock.** While a run trains, it holds an OS lock (``fcntl.flock``) on ``.tinysiam.lock``
  in its folder; a second process is refused with the holder's pid. The OS releases the
  lock when the holder dies, even by SIGKILL, so a stale lock never blocks anyone.
- **Guard.** A folder holding any file a run writes (checkpoints, history, results,
  plots) is not started over unless asked (``overwrite``, which first deletes those
  files, so nothing of the old run survives to be mistaken for the new one's).
- **Consistency.** The checkpoint is the truth: it holds the history, and
  ``history.json``/``.csv`` are written from it after it, and again on resume, so a
  crash between the two is repaired.
"""
import csv
import io
import json
import os
from pathlib import Path

from ..serialization import read_checkpoint_meta, remove_orphan_temporaries, write_text_atomic
from .errors import UserError

try:
    import fcntl
except ImportError:  # not POSIX: the folder is not locked
    fcntl = None

LOCK_NAME = ".tinysiam.lock"
CHECKPOINTS = ("last.npz", "best.npz")
RUN_FILES = CHECKPOINTS + ("history.json", "history.csv", "results.json", "loss.png", "roc.png", "embeddings.png",
                           "one_shot.png")
EPOCH_CHECKPOINTS = "epoch-*.npz"  # one per epoch, with --keep-epochs
MODES = ("new", "resume", "overwrite")


class RunFolder:
    """The output folder of one training run; use ``with RunFolder(path).open(mode) as run:``.

    ``mode`` is "new" (refused if the folder holds a run), "resume" (needs ``last.npz``) or
    "overwrite" (deletes the old run's files, then starts anew).
    """

    def __init__(self, path):
        if path is None or str(path).strip() == "":
            raise UserError("--out must name a folder, got an empty path")
        self.path = Path(path)
        self._lock_file = None

    # ----- opening and closing --------------------------------------------------------------
    def check(self, mode):
        """Raise UserError if the folder cannot be used in ``mode``; returns the run files it holds. Writes nothing."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path} is a file, not a folder")
        if any(parent.is_file() for parent in self.path.parents):
            raise UserError(f"--out {self.path}: a file stands where a folder should be")
        existing = self.existing_files() if self.path.is_dir() else []
        if mode == "new" and existing:
            raise UserError(f"--out {self.path} already holds a run ({', '.join(existing)}); continue it with "
                            "tinysiam train --resume, or pass --overwrite to start over")
        if mode == "resume" and not (self.path / "last.npz").is_file():
            raise UserError(f"--resume: there is no checkpoint to resume in {self.path} (no last.npz)")
        return existing

    def open(self, mode):
        """Create the folder, take its lock, check it for ``mode`` and tidy it; returns self (a context manager)."""
        self.check(mode)
        self._make_folder()
        self._lock()
        try:
            existing = self.check(mode)  # again: another process may have written here meanwhile
            remove_orphan_temporaries(self.path)  # left by a process killed mid-write; we hold the lock
            if mode == "overwrite":
                for name in existing:
                    (self.path / name).unlink()
        except BaseException:
            self.close()
            raise
        return self

    def _make_folder(self):
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UserError(f"--out {self.path}: a file stands where a folder should be") from None
        except OSError as error:
            raise UserError(f"--out {self.path}: cannot create the folder ({error.strerror})") from None

    def _lock(self):
        """Take the folder's lock, or raise naming the process that holds it."""
        path = self.path / LOCK_NAME
        try:
            handle = open(path, "a+")
        except OSError as error:
            raise UserError(f"--out {self.path}: cannot write there ({error.strerror})") from None
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise UserError(f"--out {self.path} is in use by another tinysiam run ({holder}); wait for it to "
                                "finish or stop it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_file = handle

    def close(self):
        """Release the lock (the lock file stays: removing it could let two processes lock two different files)."""
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----- contents ----------------------------------------------------------------------------
    def existing_files(self):
        """The run files present in the folder."""
        kept = sorted(path.name for path in self.path.glob(EPOCH_CHECKPOINTS))
        return [name for name in RUN_FILES if (self.path / name).exists()] + kept

    def read_meta(self, name="last.npz"):
        return read_checkpoint_meta(self.path / name)

    def write_history(self, history):
        """history.json and history.csv, one row per epoch; the CSV has every column any row has."""
        columns = list(dict.fromkeys(key for row in history for key in row))  # first-seen order
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
        for name, text in (("history.json", json.dumps(history, indent=1)), ("history.csv", buffer.getvalue())):
            try:
                write_text_atomic(self.path / name, text)
            except OSError as error:
                raise UserError(f"cannot write {self.path / name}: {error.strerror or error}") from None


def read_history(folder):
    """The rows of ``history.json`` in a run folder."""
    return json.loads((Path(folder) / "history.json").read_text())
