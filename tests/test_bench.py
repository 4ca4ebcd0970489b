"""The benchmark harness in smoke mode (tiny sizes, one run), so it never rots; peers are used when installed."""
import json
import sys
from pathlib import Path

import pytest

from tinysiam.engine.backend import gpu_available

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))  # the harness lives in the checkout
import harness as bench  # noqa: E402


def test_smoke_run_writes_every_benchmark_and_the_nets_agree(tmp_path):
    json_path, md_path = tmp_path / "r.json", tmp_path / "r.md"
    assert bench.main(["--smoke", "--profile", "--json", str(json_path), "--markdown", str(md_path)]) == 0
    report = json.loads(json_path.read_text())
    names = [entry["benchmark"] for entry in report["benchmarks"]]
    assert names == list(bench.benchmarks(smoke=True))
    table = md_path.read_text()
    for entry in report["benchmarks"]:
        assert f"| {entry['benchmark']} |" in table
        for mode, row in entry["modes"].items():
            ours = row["contenders"]["tinysiam"]
            assert ours["median_s"] > 0, (entry["benchmark"], mode, ours)
            if mode != "forward":
                assert ours["grad_dtypes"] == ["float32"], (entry["benchmark"], mode)
    # the same net from the same weights gives the same first loss in every framework that ran
    for name in ("step_mini", "step_koch"):
        step = next(e for e in report["benchmarks"] if e["benchmark"] == name)["modes"]["step"]["contenders"]
        losses = {c: stats["first_loss"] for c, stats in step.items() if "first_loss" in stats}
        assert "tinysiam" in losses
        for contender, loss in losses.items():
            assert loss == pytest.approx(losses["tinysiam"], rel=1e-4), (name, losses)
    profiled = next(e for e in report["benchmarks"] if e["benchmark"] == "step_mini")["profile"]
    assert {"Conv2dOp.forward", "Conv2dOp.backward"} <= {label for label, _ in profiled["rows"]}
    assert "## Where the time goes: tinysiam step_mini" in table


def test_unknown_benchmark_is_an_error_listing_the_names(capsys):
    assert bench.main(["--only", "resnet50", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'resnet50'" in err and "step_koch" in err and "conv_koch2" in err


def test_a_missing_peer_is_reported_and_its_column_skipped(tmp_path, monkeypatch, capsys):
    # a "torch" package that fails to import, found before any installed one
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('not here', name='torch')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert bench.main(["--smoke", "--only", "linear_koch", "--contenders", "tinysiam,torch",
                       "--json", str(tmp_path / "r.json")]) == 0
    assert "torch not installed: column skipped" in capsys.readouterr().out
    row = json.loads((tmp_path / "r.json").read_text())["benchmarks"][0]["modes"]["forward"]["contenders"]
    assert "median_s" in row["tinysiam"] and row["torch"] == {"skipped": "torch not installed"}


@pytest.mark.skipif(gpu_available(), reason="checks the message of a machine without a GPU")
def test_gpu_without_a_device_is_reported_not_fatal(capsys):
    assert bench.main(["--smoke", "--device", "gpu", "--only", "loss_bce", "--contenders", "tinysiam"]) == 0
    assert "tinysiam on gpu: device='gpu' requested but" in capsys.readouterr().out


def test_flop_counts_match_the_layer_arithmetic():
    table = bench.benchmarks()
    # conv_koch2: OC=128 outputs of 42x42 per image, each a C*KH*KW = 64*7*7 dot product, batch 64
    assert bench.forward_flops(table["conv_koch2"]) == 2 * 64 * (128 * 42 * 42) * (64 * 7 * 7)
    assert bench.forward_flops(table["linear_koch"]) == 2 * 64 * 9216 * 4096
    # Koch et al.'s tower costs about 1817.7 MFLOP per 105x105 image; 32 pairs = 64 images
    assert bench.forward_flops(table["step_koch"]) == pytest.approx(64 * 1817.7e6, rel=1e-3)
    assert bench.forward_flops(table["loss_bce"]) is None


def _report(mini_ratio, koch_ratio, dezero_ratio, koch_peak_mb):
    def step(name, torch_ratio, peak):
        ratios = {"torch": {"of_medians": torch_ratio, "median_paired": torch_ratio},
                  "dezero": {"of_medians": dezero_ratio, "median_paired": dezero_ratio}}
        return {"benchmark": name, "modes": {"step": {"ratios": ratios}}, "memory": {"tinysiam": {"peak_rss_mb": peak}}}

    return {"benchmarks": [step("step_mini", mini_ratio, 100), step("step_koch", koch_ratio, koch_peak_mb)]}


def test_targets_are_judged_on_the_ratio_of_medians():
    verdicts = [v for _, _, v in bench.evaluate_targets(_report(0.5, 0.81, 0.25, 1900))]
    assert verdicts == ["met", "NOT met", "met", "met", "met"]
    verdicts = [v for _, _, v in bench.evaluate_targets(_report(0.8, 0.7, 0.4, 2100))]
    assert verdicts == ["met", "met", "NOT met", "NOT met", "NOT met"]
    assert [v for _, _, v in bench.evaluate_targets({"benchmarks": []})] == ["-"] * 5
