"""The command line, end to end, in shortened runs."""
import json

import pytest

from tinysiam.app.cli import main

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def test_demo_shortened(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--epochs", "2", "--steps-per-epoch", "15", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "5-way one-shot accuracy" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["test_5way_1shot_accuracy"] > 0.3  # chance is 0.2; 500 episodes make 0.3 far outside noise
    for name in ("loss.png", "roc.png", "embeddings.png", "one_shot.png", "best.npz", "last.npz", "history.csv"):
        assert (tmp_path / name).is_file()
    history = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]


def test_train_refuses_to_overwrite_then_resumes(tmp_path, capsys):
    args = ["train", "--data", "digits", "--out", str(tmp_path), "--epochs", "1", "--steps-per-epoch", "5",
            "--quiet", "--no-plots", "--loss", "koch"]
    assert main(args) == 0
    before = (tmp_path / "last.npz").read_bytes()
    assert main(args) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err
    assert (tmp_path / "last.npz").read_bytes() == before
    resumed = args[:args.index("--epochs")] + ["--epochs", "2"] + args[args.index("--epochs") + 2:] + ["--resume"]
    assert main(resumed) == 0
    assert [row["epoch"] for row in json.loads((tmp_path / "history.json").read_text())] == [1, 2]
    evaluation = tmp_path / "eval"
    assert main(["eval", "--protocol", "nway", "--checkpoint", str(tmp_path / "best.npz"), "--data", "digits",
                 "--way", "3", "--out", str(evaluation)]) == 0
    result = json.loads((evaluation / "eval_nway.json").read_text())
    assert 0 <= result["test_3way_1shot_accuracy"] <= 1 and (evaluation / "roc.png").is_file()


def test_interrupt_saves_a_checkpoint(tmp_path, monkeypatch, capsys):
    from tinysiam.app import training

    calls = {"n": 0}
    original = training.Trainer.loss

    def interrupting(self):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(training.Trainer, "loss", interrupting)
    code = main(["train", "--out", str(tmp_path), "--epochs", "3", "--steps-per-epoch", "5", "--quiet", "--no-plots"])
    assert code == 130 and "--resume" in capsys.readouterr().err
    from tinysiam.serialization import read_checkpoint_meta

    meta = read_checkpoint_meta(tmp_path / "last.npz")
    assert meta["interrupted"] and meta["epoch"] == 1


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "omniglot", "--data-dir", "/nonexistent", "--out", "x"], "does not exist"),
    (["train", "--out", "x", "--lr", "-1"], "lr must be positive"),
    (["eval", "--protocol", "lake"], "exactly one of --checkpoint or --baseline"),
    (["eval", "--checkpoint", "/nonexistent.npz"], "no such file"),
])
def test_user_errors_print_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_eval_lake_with_the_mhd_baseline(data_root, tmp_path, capsys):
    assert main(["eval", "--protocol", "lake", "--baseline", "mhd", "--data-dir", str(data_root),
                 "--out", str(tmp_path)]) == 0
    assert "38.75% error" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval_lake.json").read_text())["error"] == pytest.approx(0.3875)


def test_eval_lake_with_a_trained_checkpoint(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", "omniglot", "--data-dir", str(data_root), "--preset", "mini", "--out", str(out),
                 "--epochs", "1", "--steps-per-epoch", "3", "--batch", "16", "--quiet", "--no-plots"]) == 0
    assert main(["eval", "--protocol", "lake", "--checkpoint", str(out / "best.npz"), "--data-dir", str(data_root)]) == 0
    accuracy = float(capsys.readouterr().out.split("20 runs: ")[1].split("%")[0])
    assert 0 <= accuracy <= 100


def test_train_on_the_att_faces_reports_verification(data_root, tmp_path):
    out = tmp_path / "faces"
    assert main(["train", "--data", "faces", "--data-dir", str(data_root), "--preset", "faces", "--epochs", "1",
                 "--steps-per-epoch", "2", "--batch", "8", "--quiet", "--no-plots", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["test_classes"] == 10 and 0 <= results["test_verification_eer"] <= 1


def test_gradcheck_command_passes(capsys):
    assert main(["gradcheck", "--group", "op"]) == 0
    assert "0 failed" in capsys.readouterr().out
