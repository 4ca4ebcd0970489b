"""Saving: round trips, atomic writes, clear errors."""
import os

import numpy as np
import pytest

from tinysiam import nn, optim
from tinysiam.serialization import load, load_checkpoint, read_checkpoint_meta, save, save_checkpoint


def model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_save_load_round_trip(tmp_path):
    a, b = model(), model()
    save(a, tmp_path / "m.npz")
    load(b, tmp_path / "m.npz")
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[key], value)


def test_checkpoint_keeps_optimizer_state_and_meta(tmp_path):
    m = model()
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    for p in m.parameters():
        p.grad = np.ones_like(p.data)
    opt.step()
    save_checkpoint(tmp_path / "c.npz", m, opt, epoch=3, config={"preset": "x"}, history=[{"loss": 1.0}])
    m2 = model()
    opt2 = optim.SGD(m2.parameters(), lr=0.5, momentum=0.9)
    meta = load_checkpoint(tmp_path / "c.npz", m2, opt2)
    assert meta == {"epoch": 3, "config": {"preset": "x"}, "history": [{"loss": 1.0}]}
    assert opt2.param_groups[0]["lr"] == 0.1 and len(opt2.state) == len(list(m.parameters()))
    assert read_checkpoint_meta(tmp_path / "c.npz")["epoch"] == 3


def test_a_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save(model(), path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save(model(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def test_loading_errors(tmp_path):
    save(nn.Linear(3, 2), tmp_path / "small.npz")
    save_checkpoint(tmp_path / "c.npz", nn.Linear(3, 2))
    with pytest.raises(ValueError, match="does not fit this model"):
        load_checkpoint(tmp_path / "c.npz", nn.Linear(5, 2))
    with pytest.raises(FileNotFoundError):
        load(nn.Linear(3, 2), tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        load(nn.Linear(3, 2), tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="not a tinysiam checkpoint"):
        load_checkpoint(tmp_path / "small.npz", nn.Linear(3, 2))
