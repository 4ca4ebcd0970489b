"""Result records: what they hold, where they go, and the errors for bad input."""
import json
import subprocess

import numpy as np
import pytest

from tinysiam.app.records import git_state, machine_summary, write_record


def test_record_holds_command_commit_seconds_metrics_date_and_machine(tmp_path):
    path = write_record("omniglot-lake", {"accuracy": np.float32(0.875), "per_run": np.array([0.9, 0.85])},
                        seconds=12.34567, command=["tinysiam", "eval", "--out", "a b"], out_dir=tmp_path)
    assert path == tmp_path / "omniglot-lake.json"
    record = json.loads(path.read_text())
    assert record["command"] == "tinysiam eval --out 'a b'"  # quoted so that it can be pasted into a shell
    assert record["seconds"] == 12.346
    assert record["metrics"] == {"accuracy": 0.875, "per_run": [0.9, 0.85]}
    assert record["date"].endswith("+00:00")
    assert record["machine"]["cpus"] >= 1 and record["machine"]["numpy"] == np.__version__
    assert set(record) == {"command", "git", "seconds", "metrics", "date", "machine"}


def test_a_new_record_replaces_the_old_one_and_leaves_no_temporary_file(tmp_path):
    write_record("run", {"accuracy": 0.5}, 1, command="x", out_dir=tmp_path)
    write_record("run", {"accuracy": 0.75}, 2, command="x", out_dir=tmp_path)
    assert json.loads((tmp_path / "run.json").read_text())["metrics"] == {"accuracy": 0.75}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_git_state_of_a_checkout_and_outside_one(tmp_path):
    assert git_state(tmp_path) is None
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["add", "f"], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True)
    head = subprocess.run(git + ["rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "f").write_text("2")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}
    path = write_record("r", {}, 0, command="x", out_dir=tmp_path / "results", checkout=tmp_path)
    record = json.loads(path.read_text())
    assert record["git"] == {"commit": head, "dirty": True}


def test_machine_summary_names_the_cpu():
    summary = machine_summary()
    assert summary["cpu"] and summary["python"].count(".") == 2


@pytest.mark.parametrize("name, metrics, seconds, error", [
    ("../escape", {}, 1, "name must be a plain file name"),
    ("", {}, 1, "name must be a plain file name"),
    ("ok", [0.5], 1, "metrics must be a dict"),
    ("ok", {}, -1, "seconds must be a number >= 0, got -1"),
    ("ok", {}, float("nan"), "seconds must be a number >= 0"),
    ("ok", {"model": object()}, 1, "metrics hold a object"),
])
def test_bad_input_is_named_and_nothing_is_written(tmp_path, name, metrics, seconds, error):
    with pytest.raises((TypeError, ValueError), match=error):
        write_record(name, metrics, seconds, command="x", out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_record_names_paths_relative_to_the_checkout(tmp_path):
    checkout = tmp_path / "project"
    data = tmp_path / "shared" / "data"
    command = ["tinysiam", "train", "--data-dir", str(data), f"--out={checkout / 'runs' / 'a'}", "--lr", "0.1"]
    path = write_record("r", {"checkpoint": str(checkout / "runs" / "a" / "best.npz"), "runs": [str(data)], "n": 3},
                        1, command=command, out_dir=tmp_path / "results", checkout=checkout)
    record = json.loads(path.read_text())
    assert record["command"] == "tinysiam train --data-dir ../shared/data --out=runs/a --lr 0.1"
    assert record["metrics"] == {"checkpoint": "runs/a/best.npz", "runs": ["../shared/data"], "n": 3}


def strings_in(value):
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return [value] if isinstance(value, str) else []


def test_no_record_in_the_checkout_holds_an_absolute_path():
    from conftest import REPO

    records = sorted((REPO / "results").glob("*.json")) + sorted((REPO / "benchmarks" / "results").glob("*.json"))
    assert records
    for path in records:
        absolute = [s for s in strings_in(json.loads(path.read_text())) if s.startswith(("/work/", "/tmp/", "/home/"))]
        assert not absolute, f"{path.name}: {absolute[:3]}"
