"""The benchmark entry point in smoke mode (tiny sizes, one repetition), so it never rots."""
import json

from tinysiam.bench import _benchmarks, main


def test_smoke_run_writes_every_benchmark(tmp_path, capsys):
    code = main(["--smoke", "--contenders", "tinysiam", "--json", str(tmp_path / "r.json"),
                 "--markdown", str(tmp_path / "r.md")])
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    names = [row["benchmark"] for row in report["rows"]]
    assert names == list(_benchmarks(smoke=True))
    assert all("median_s" in row["contenders"]["tinysiam"] for row in report["rows"]), report["rows"]
    table = (tmp_path / "r.md").read_text()
    assert all(f"| {name} |" in table for name in names)


def test_unknown_benchmark_is_an_error(capsys):
    assert main(["--only", "resnet50", "--smoke"]) == 2
    assert "unknown benchmark 'resnet50'" in capsys.readouterr().err


def test_missing_gpu_or_peer_is_reported_and_skipped(capsys, monkeypatch):
    import tinysiam.bench as bench

    monkeypatch.setattr(bench, "available", lambda contender, device: None if contender == "tinysiam"
                        else f"{contender} not installed")
    assert main(["--smoke", "--only", "linear"]) == 0
    out = capsys.readouterr().out
    assert "torch not installed; column skipped" in out and "dezero not installed; column skipped" in out
