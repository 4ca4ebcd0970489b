"""A run folder is a unit: one writer, never replaced by accident, and killed runs resume to the same weights."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinysiam.app.errors import UserError
from tinysiam.app.runs import LOCK_NAME, RUN_FILES, RunFolder
from tinysiam.serialization import read_npz

REPO = Path(__file__).resolve().parents[1]


def tinysiam(*args, **popen):
    """A ``python -m tinysiam`` process running this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "tinysiam", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    with RunFolder(tmp_path).open("new"):
        with pytest.raises(UserError, match=f"in use by another tinysiam run \\(pid {os.getpid()}\\)"):
            RunFolder(tmp_path).open("new")
    RunFolder(tmp_path).open("new").close()  # released on close


def test_a_lock_left_by_a_killed_process_is_not_stale(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
                               "from tinysiam.app.runs import RunFolder; run = RunFolder(sys.argv[2]).open('new');"
                               "print('locked', flush=True); time.sleep(60)", str(REPO), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(UserError, match=f"pid {holder.pid}"):
        RunFolder(tmp_path).open("new")
    holder.kill()  # SIGKILL: no clean-up code runs, the lock file stays on disk
    holder.wait()
    assert (tmp_path / LOCK_NAME).exists()
    RunFolder(tmp_path).open("new").close()  # the OS released the dead process's lock


@pytest.mark.parametrize("name", RUN_FILES)
def test_any_file_of_a_run_guards_the_folder(tmp_path, name):
    (tmp_path / name).write_bytes(b"precious")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=f"already holds a run \\({name}\\)"):
        RunFolder(tmp_path).open("new")
    assert (tmp_path / name).read_bytes() == b"precious"
    RunFolder(tmp_path).open("overwrite").close()
    assert not (tmp_path / name).exists() and (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_needs_a_checkpoint(tmp_path):
    with pytest.raises(UserError, match="no checkpoint to resume"):
        RunFolder(tmp_path).open("resume")


def test_out_below_a_file_or_empty_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        RunFolder(tmp_path / "file").open("new")
    with pytest.raises(UserError, match="a file stands where a folder should be"):
        RunFolder(tmp_path / "file" / "below").open("new")
    with pytest.raises(UserError, match="--out must name a folder"):
        RunFolder("")


def test_temporary_files_of_killed_writers_are_removed(tmp_path):
    orphans = [tmp_path / ".last.npz.0a1b2c3d.tmp", tmp_path / ".history.json.deadbeef.tmp"]
    for path in orphans:
        path.write_bytes(b"half")
    (tmp_path / "keep.tmp").write_text("not ours: no leading dot")
    RunFolder(tmp_path).open("new").close()
    assert not any(p.exists() for p in orphans) and (tmp_path / "keep.tmp").exists()


def test_history_csv_has_every_column_of_every_row(tmp_path):
    with RunFolder(tmp_path).open("new") as run:
        run.write_history([{"epoch": 1, "val_5way_accuracy": 0.5}, {"epoch": 2, "val_20way_accuracy": 0.3}])
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,val_5way_accuracy,val_20way_accuracy" and lines[2] == "2,,0.3"


# ----- real processes, stopped and killed at random moments ---------------------------------------
TRAIN = ["train", "--data", "digits", "--loss", "triplet", "--epochs", "8", "--steps-per-epoch", "15", "--batch", "32",
         "--augment", "--no-plots"]


def train_to_the_end(out):
    """Run (or resume) until the run completes; returns the exit statuses seen."""
    statuses = []
    while True:
        resume = ["--resume"] if (out / "last.npz").exists() else []
        process = tinysiam(*TRAIN, "--out", str(out), *resume)
        _, err = process.communicate(timeout=300)
        statuses.append(process.returncode)
        if process.returncode == 0:
            return statuses
        assert process.returncode == 130 and len(statuses) < 5, err


def stop_at_a_random_moment(out, sig, rng, epoch_seconds):
    """Start (or resume) a run, let it finish one or two epochs, then send ``sig`` at a random moment of the
    next one (called twice on a run of 8 epochs: the run is still going); returns its exit status."""
    resume = ["--resume"] if (out / "last.npz").exists() else []
    process = tinysiam(*TRAIN, "--out", str(out), *resume)
    assert process.stdout.readline().startswith(("training", "resuming"))
    for _ in range(rng.integers(1, 3)):
        assert process.stdout.readline().startswith("epoch")
    time.sleep(rng.uniform(0, epoch_seconds))
    process.send_signal(sig)
    process.communicate(timeout=300)
    return process.returncode


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_stopped_or_killed_process_resumes_to_the_weights_of_a_straight_run(tmp_path, sig):
    pytest.importorskip("sklearn")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert train_to_the_end(straight) == [0]
    rng = np.random.default_rng(int(sig))
    epoch_seconds = max(row["seconds"] for row in json.loads((straight / "history.json").read_text()))
    statuses = [stop_at_a_random_moment(stopped, sig, rng, epoch_seconds) for _ in range(2)]  # stopped twice
    assert statuses == [130 if sig == signal.SIGINT else -signal.SIGKILL] * 2
    train_to_the_end(stopped)
    expected, got = read_npz(straight / "last.npz"), read_npz(stopped / "last.npz")
    for name in expected:
        if name != "meta":
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    history = [json.loads((folder / "history.json").read_text()) for folder in (straight, stopped)]
    assert [row["train_loss"] for row in history[0]] == [row["train_loss"] for row in history[1]]
    assert not list(stopped.glob(".*.tmp"))


def test_two_processes_cannot_train_into_one_folder(tmp_path):
    pytest.importorskip("sklearn")
    long_run = [*TRAIN, "--epochs", "10000"]  # still training when the second starts, however fast the machine
    first = tinysiam(*long_run, "--out", str(tmp_path))
    assert first.stdout.readline().startswith("training")
    second = tinysiam(*TRAIN, "--out", str(tmp_path), "--overwrite")
    _, err = second.communicate(timeout=300)
    assert second.returncode == 2 and f"in use by another tinysiam run (pid {first.pid})" in err
    first.send_signal(signal.SIGINT)  # Ctrl-C: the first stops after its step and saves
    first.communicate(timeout=300)
    assert first.returncode == 130 and (tmp_path / "last.npz").exists()
