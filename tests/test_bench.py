"""The benchmark harness in smoke mode (tiny sizes, one run), so it never rots; peers are used when installed."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tinysiam import nn
from tinysiam.engine.backend import gpu_available

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))  # the harness lives in the checkout
import harness as bench  # noqa: E402
import nets  # noqa: E402
import report  # noqa: E402


def test_smoke_run_writes_every_benchmark_and_the_nets_agree(tmp_path):
    json_path, md_path = tmp_path / "r.json", tmp_path / "r.md"
    assert bench.main(["--smoke", "--profile", "--json", str(json_path), "--markdown", str(md_path)]) == 0
    report = json.loads(json_path.read_text())
    names = [entry["benchmark"] for entry in report["benchmarks"]]
    assert names == list(nets.benchmarks(smoke=True))
    table = md_path.read_text()
    for entry in report["benchmarks"]:
        assert f"| {entry['benchmark']} |" in table
        for mode, row in entry["modes"].items():
            ours = row["contenders"]["tinysiam"]
            assert ours["median_s"] > 0, (entry["benchmark"], mode, ours)
            if mode != "forward":
                assert ours["grad_dtypes"] == ["float32"], (entry["benchmark"], mode)
    # the same net from the same weights gives the same first loss in every framework that ran
    for name in ("step_mini", "step_koch", "step_omniglot28", "step_faces"):
        step = next(e for e in report["benchmarks"] if e["benchmark"] == name)["modes"]["step"]["contenders"]
        losses = {c: stats["first_loss"] for c, stats in step.items() if "first_loss" in stats}
        assert "tinysiam" in losses
        for loss in losses.values():
            assert loss == pytest.approx(losses["tinysiam"], rel=1e-4), (name, losses)
    profiled = next(e for e in report["benchmarks"] if e["benchmark"] == "step_mini")["profile"]
    labels = {label for label, _ in profiled["rows"]}
    ops = {f"Conv2d{name}Op.{method}" for name in ("Im2col", "Winograd", "FFT") for method in ("forward", "backward")}
    assert ops & labels
    for name in ("step_mini", "step_omniglot28", "step_faces", "epoch_omniglot28"):
        assert f"## Where the time goes: tinysiam {name}" in table
    epoch = next(e for e in report["benchmarks"] if e["benchmark"] == "epoch_omniglot28")
    assert {"BatchNormOp.forward", "augmentation (affine warp, NumPy)", "sampling (class-balanced batch)",
            "batch-hard mining"} <= {label for label, _ in epoch["profile"]["rows"]}
    assert epoch["modes"]["epoch"]["contenders"]["tinysiam"]["images_per_s"] > 0
    assert "## End to end: epoch_omniglot28" in table


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
    table = nets.benchmarks()
    # conv_koch2: OC=128 outputs of 42x42 per image, each a C*KH*KW = 64*7*7 dot product, batch 64
    assert nets.forward_flops(table["conv_koch2"]) == 2 * 64 * (128 * 42 * 42) * (64 * 7 * 7)
    # padding 1 keeps 14x14
    assert nets.forward_flops(table["conv_omniglot2"]) == 2 * 128 * (64 * 14 * 14) * (64 * 3 * 3)
    assert nets.forward_flops(table["linear_koch"]) == 2 * 64 * 9216 * 4096
    # Koch et al.'s tower costs about 1817.7 MFLOP per 105x105 image; 32 pairs = 64 images
    assert nets.forward_flops(table["step_koch"]) == pytest.approx(64 * 1817.7e6, rel=1e-3)
    # omniglot28: 3x3 convs of 1->64 at 28x28, then 64->64 at 14x14, 7x7, 3x3; a dense 64 -> 64
    per_image = 2 * 9 * 64 * (28 * 28 + 64 * (14 * 14 + 7 * 7 + 3 * 3)) + 2 * 64 * 64
    assert nets.forward_flops(table["step_omniglot28"]) == 128 * per_image
    assert nets.forward_flops(table["epoch_omniglot28"]) == 20 * 128 * per_image
    assert nets.forward_flops(table["loss_bce"]) is None


def test_the_step_nets_are_the_presets_layer_by_layer():
    table = nets.benchmarks()
    layers, head, _ = nets.described_net(table["step_omniglot28"])
    assert [layer.kind for layer in layers] == ["conv", "batchnorm", "relu", "pool"] * 4 + ["flatten", "linear"]
    assert layers[4].sizes == dict(c=64, oc=64, k=(3, 3), stride=(1, 1), padding=(1, 1)) and head is None
    tower, _, _ = nets.tinysiam_net(table["step_omniglot28"])
    np.testing.assert_array_equal(layers[0].weights[0], tower[0].weight.numpy())  # the preset's own weights
    layers, head, _ = nets.described_net(table["step_koch"])
    assert [layer.kind for layer in layers][-2:] == ["linear", "sigmoid"] and head.sizes == dict(fin=4096, fout=1)
    with pytest.raises(TypeError, match="no PyTorch or DeZero twin for Dropout"):
        nets.describe([nn.Dropout(0.5)])


def _report(ratios, dezero_ratio, koch_peak_mb):
    def step(name, torch_ratio, peak):
        ratios = {"torch": {"of_medians": torch_ratio, "median_paired": torch_ratio},
                  "dezero": {"of_medians": dezero_ratio, "median_paired": dezero_ratio}}
        return {"benchmark": name, "modes": {"step": {"ratios": ratios}}, "memory": {"tinysiam": {"peak_rss_mb": peak}}}

    return {"benchmarks": [step(name, ratio, koch_peak_mb if name == "step_koch" else 100)
                           for name, ratio in ratios.items()]}


def test_targets_are_judged_on_the_ratio_of_medians():
    verdicts = [v for _, _, v in report.evaluate_targets(
        _report({"step_omniglot28": 1.0, "step_mini": 0.5, "step_koch": 0.81}, 0.25, 1500))]
    assert verdicts == ["met", "met", "met", "NOT met", "met", "met", "met"]
    verdicts = [v for _, _, v in report.evaluate_targets(
        _report({"step_omniglot28": 1.01, "step_mini": 1.2, "step_koch": 0.8}, 0.4, 1501))]
    assert verdicts == ["NOT met", "NOT met", "met", "met", "NOT met", "NOT met", "NOT met"]
    assert [v for _, _, v in report.evaluate_targets({"benchmarks": []})] == ["-"] * 7
