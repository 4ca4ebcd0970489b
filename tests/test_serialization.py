"""Saving: round trips, atomic writes, clear errors."""
import os
import stat

import numpy as np
import pytest

import tinysiam as ts
from tinysiam import nn, optim
from tinysiam.serialization import load, load_checkpoint, read_checkpoint_meta, save, save_checkpoint, write_text_atomic


def model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def trained(m):
    """The model after one SGD-momentum step (running stats moved, velocity buffers filled); returns the optimizer."""
    opt = optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(ts.Tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))).sum().backward()
    opt.step()
    return opt


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        np.testing.assert_array_equal(sa[key], sb[key])


def test_save_load_round_trip(tmp_path):
    a, b = model(), model()
    trained(a)
    save(a, tmp_path / "m.npz")
    assert load(b, tmp_path / "m.npz") is b
    assert_same_state(a, b)
    c = model().astype(np.float64)
    save(a.state_dict(), tmp_path / "state.npz")  # a plain state dict works too
    load(c, tmp_path / "state.npz")
    assert c[0].weight.dtype == np.float64  # the module keeps its dtype
    np.testing.assert_array_equal(c[0].weight.data, a[0].weight.data.astype(np.float64))


def test_checkpoint_restores_model_optimizer_and_meta(tmp_path):
    m = model()
    opt = trained(m)
    save_checkpoint(tmp_path / "c.npz", m, opt, epoch=3, config={"preset": "x"}, history=[{"loss": 1.0}])
    m2 = model()
    opt2 = optim.SGD(m2.parameters(), lr=0.5, momentum=0.9)
    meta = load_checkpoint(tmp_path / "c.npz", m2, opt2)
    assert meta == {"epoch": 3, "config": {"preset": "x"}, "history": [{"loss": 1.0}]}
    assert read_checkpoint_meta(tmp_path / "c.npz") == meta
    assert_same_state(m, m2)
    assert opt2.param_groups[0]["lr"] == 0.1 and opt2.steps == 1
    for p, p2 in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(opt.state[id(p)]["velocity"], opt2.state[id(p2)]["velocity"])
    m3 = model()
    load_checkpoint(tmp_path / "c.npz", m3)  # the model alone
    assert_same_state(m, m3)


@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_save_that_fails_midway_keeps_the_previous_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "m.npz"
    save(model(), path)
    before = path.read_bytes()
    write_array = np.lib.format.write_array
    written = []

    def fail_on_the_third_array(fp, array, *args, **kwargs):
        if len(written) == 2:
            raise failure
        written.append(array)
        return write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", fail_on_the_third_array)
    with pytest.raises(type(failure)):
        save(model(), path)
    assert len(written) == 2  # two arrays were already in the temporary file
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def test_arrays_that_need_pickle_are_refused_before_writing(tmp_path):
    path = tmp_path / "m.npz"
    save(model(), path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match="cannot save entry 'names' with dtype object"):
        save({"w": np.zeros(2), "names": np.array(["a", None], dtype=object)}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


def test_files_are_never_unpickled(tmp_path):
    np.savez(tmp_path / "evil.npz", weight=np.array([{"code": "runs"}], dtype=object))
    with pytest.raises(ValueError, match="not a readable tinysiam .npz file.*allow_pickle=False"):
        load(nn.Linear(1, 1), tmp_path / "evil.npz")


def test_saved_files_have_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    save(model(), tmp_path / "m.npz")
    write_text_atomic(tmp_path / "log.txt", "epoch 1\n")
    for name in ("m.npz", "log.txt"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o666 & ~umask


def test_text_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "log.txt"
    write_text_atomic(path, "first\n")  # creates the folder
    assert path.read_text() == "first\n"

    def fail(*args):
        raise OSError("rename failed")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="rename failed"):
        write_text_atomic(path, "second\n")
    assert path.read_text() == "first\n" and os.listdir(path.parent) == ["log.txt"]


def test_checkpoint_errors_name_the_problem(tmp_path):
    save(nn.Linear(3, 2), tmp_path / "small.npz")
    save_checkpoint(tmp_path / "c.npz", nn.Linear(3, 2))
    other = nn.Linear(5, 2)
    before = other.state_dict()
    with pytest.raises(ValueError, match=r"(?s)does not fit this model.*weight: expected shape \(2, 5\), got \(2, 3\)"):
        load_checkpoint(tmp_path / "c.npz", other)
    np.testing.assert_array_equal(other.state_dict()["weight"], before["weight"])
    with pytest.raises(ValueError, match=r"(?s)does not fit this model.*missing: \['0.weight'"):
        load_checkpoint(tmp_path / "c.npz", nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(ValueError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "c.npz", nn.Linear(3, 2), optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1))
    m = nn.Linear(3, 2)
    save_checkpoint(tmp_path / "with_optim.npz", m, optim.SGD(m.parameters(), lr=0.1))
    two_groups = optim.SGD([{"params": [m.weight]}, {"params": [m.bias]}], lr=0.1)
    with pytest.raises(ValueError, match=r"(?s)does not fit this optimizer.*lacks \['group1.lr'\]"):
        load_checkpoint(tmp_path / "with_optim.npz", None, two_groups)
    with pytest.raises(ValueError, match="not a tinysiam checkpoint"):
        load_checkpoint(tmp_path / "small.npz", nn.Linear(3, 2))
    with pytest.raises(TypeError, match="meta must be JSON-serialisable"):
        save_checkpoint(tmp_path / "bad.npz", m, note=object())
    assert not (tmp_path / "bad.npz").exists()


def test_reading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load(nn.Linear(3, 2), tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable"):
        load(nn.Linear(3, 2), tmp_path / "junk.npz")
