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
from report import BEGIN, END  # noqa: E402


def test_smoke_run_writes_every_benchmark_and_the_nets_agree(tmp_path):
    json_path, md_path, page = tmp_path / "r.json", tmp_path / "r.md", tmp_path / "RESULTS.md"
    page.write_text(f"# Results\n\nBy hand.\n{BEGIN}\nold tables\n{END}\n## Later\n")
    assert bench.main(["--smoke", "--profile", "--json", str(json_path), "--markdown", str(md_path),
                       "--results", str(page)]) == 0
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
    # the training rows run tinysiam twice: as a library, and after retuning glibc's malloc
    for entry in report["benchmarks"]:
        for mode, row in entry["modes"].items():
            retuned = row["contenders"]["tinysiam_retuned"]
            if mode in ("step", "epoch"):
                assert retuned["median_s"] > 0 and "tinysiam_retuned/tinysiam" in row["ratios"], entry["benchmark"]
            else:
                assert retuned == {"skipped": "training steps and the epoch only"}
    assert "| tinysiam, retuned malloc / tinysiam |" in table
    # the achieved rate as a share of the GEMM peak measured in the same run
    assert report["gemm_peak_gflops"] > 0
    mini = next(e for e in report["benchmarks"] if e["benchmark"] == "step_mini")["modes"]["step"]["contenders"]
    assert mini["tinysiam"]["fraction_of_gemm_peak"] == pytest.approx(mini["tinysiam"]["gflops"]
                                                                      / report["gemm_peak_gflops"])
    assert f"{mini['tinysiam']['gflops']:.1f} ({mini['tinysiam']['fraction_of_gemm_peak']:.0%})" in table
    # the record names the output files relative to the checkout
    assert "--json ../" in report["command"] and " /" not in report["command"]
    epoch = next(e for e in report["benchmarks"] if e["benchmark"] == "epoch_omniglot28")
    assert {"BatchNormOp.forward", "augmentation (affine warp, NumPy)", "sampling (class-balanced batch)",
            "batch-hard mining"} <= {label for label, _ in epoch["profile"]["rows"]}
    assert epoch["modes"]["epoch"]["contenders"]["tinysiam"]["images_per_s"] > 0
    assert "## End to end: epoch_omniglot28" in table
    # --results puts the same tables, a heading level down, between the markers of a hand-written page
    assert page.read_text() == (f"# Results\n\nBy hand.\n{BEGIN}\n"
                                + table.replace("\n#", "\n##").replace("# ", "## ", 1) + f"{END}\n## Later\n")


def test_results_needs_the_markers(tmp_path, capsys):
    page = tmp_path / "RESULTS.md"
    page.write_text("# Results without markers\n")
    with pytest.raises(SystemExit, match="no lines"):
        bench.main(["--smoke", "--only", "loss_bce", "--results", str(page)])


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
    """A report with these tinysiam / PyTorch ratios ({benchmark: ratio}) and one tinysiam / DeZero ratio."""
    def entry(name, torch_ratio, peak):
        ratios = {"tinysiam/torch": {"of_medians": torch_ratio, "median_paired": torch_ratio}}
        if name.startswith("step_"):  # DeZero has no epoch loop
            ratios["tinysiam/dezero"] = {"of_medians": dezero_ratio, "median_paired": dezero_ratio}
        mode = name.split("_")[0]
        return {"benchmark": name, "modes": {mode: {"ratios": ratios}}, "memory": {"tinysiam": {"peak_rss_mb": peak}}}

    return {"benchmarks": [entry(name, ratio, koch_peak_mb if name == "step_koch" else 100)
                           for name, ratio in ratios.items()]}


def test_targets_are_judged_on_the_ratio_of_medians():
    # omniglot28 <= 0.9, mini <= 1.0, Koch <= 0.6, the epoch <= 0.9; DeZero >= 3x slower on each step; Koch memory
    ratios = {"step_omniglot28": 0.9, "step_mini": 1.0, "step_koch": 0.6, "epoch_omniglot28": 0.9, "step_faces": 2}
    verdicts = [v for _, _, v in report.evaluate_targets(_report(ratios, 1 / 3, 1500))]
    assert verdicts == ["met"] * 9
    ratios = {"step_omniglot28": 0.91, "step_mini": 1.01, "step_koch": 0.61, "epoch_omniglot28": 0.91,
              "step_faces": 0.5}
    verdicts = [v for _, _, v in report.evaluate_targets(_report(ratios, 0.34, 1501))]
    assert verdicts == ["missed"] * 9
    assert [v for _, _, v in report.evaluate_targets({"benchmarks": []})] == ["-"] * 9


def test_every_timed_turn_after_the_first_follows_an_untimed_run():
    import measurement

    class Worker:  # answers like a worker process and records what it was asked
        def __init__(self, contender):
            self.contender, self.asked = contender, []

        def ask(self, **command):
            self.asked.append(command)
            return {"ok": True} if command["do"] == "load" else {"seconds": 1.0, "loss": 0.5, "grad_dtypes": None}

    workers = [Worker("tinysiam"), Worker("torch")]
    for name in ("step_mini", "epoch_omniglot28"):
        for worker in workers:
            worker.asked.clear()
        measurement.measure(nets.benchmarks()[name], workers, repeat=3, warmup=1, smoke=False, settle=0,
                            profile_tinysiam=False)
        for worker in workers:
            lead_ins = [command["lead_in"] for command in worker.asked if command["do"] == "run"]
            assert lead_ins == ([0, 1, 1, 1] if name == "step_mini" else [0, 0, 0, 0])  # an epoch has its own
