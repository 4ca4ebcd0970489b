"""Bad input, across the layers: each case raises the right exception type with a message naming the argument or file.

Every case is (id, call, exception type, text the message must contain). File cases get a
folder of prepared bad files. The command-line cases check one line on stderr and exit status 2.
"""
import io
import json
import zipfile

import numpy as np
import pytest

import tinysiam as ts
from tinysiam import nn, optim
from tinysiam.engine import ops
from tinysiam.engine.conv import conv2d, max_pool2d
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.siamese import distances, losses, mining

T = ts.Tensor


def f32(*shape):
    return T(np.ones(shape, np.float32))


def backward_twice():
    x = T(np.ones(2), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    y.backward()


def model_load_wrong_shape():
    nn.Linear(2, 3).load_state_dict(nn.Linear(2, 4).state_dict())


def batchnorm_on_one_value():
    nn.BatchNorm1d(3)(f32(1, 3))


ENGINE = [
    ("tensor of strings with grad", lambda: T(np.array(["a"]), requires_grad=True), TypeError, "requires_grad=True"),
    ("matmul shapes", lambda: ops.matmul(f32(2, 3), f32(2, 3)), ValueError, "matmul: shapes (2, 3) and (2, 3)"),
    ("reshape size", lambda: f32(2, 3).reshape(4, 2), ValueError, "cannot reshape (2, 3)"),
    ("sum axis", lambda: f32(2, 3).sum(axis=3), ValueError, "axis 3 is out of range"),
    ("add dtypes", lambda: ops.add(f32(2), T(np.ones(2))), TypeError, "add: dtype mismatch float32 vs float64"),
    ("mul integers", lambda: ops.mul(T(np.ones(2, int)), T(np.ones(2, int))), TypeError, "mul: needs floating"),
    ("conv2d channels", lambda: conv2d(f32(1, 2, 5, 5), f32(3, 1, 3, 3)), ValueError, "x has 2 channels"),
    ("conv2d x type", lambda: conv2d(np.ones((1, 1, 5, 5)), f32(1, 1, 3, 3)), TypeError, "conv2d: x must be a Tensor"),
    ("conv2d kernel too big", lambda: conv2d(f32(1, 1, 2, 2), f32(1, 1, 3, 3)), ValueError, "kernel 3x3 is larger"),
    ("conv2d stride 0", lambda: conv2d(f32(1, 1, 5, 5), f32(1, 1, 3, 3), stride=0), ValueError, "stride must be >= 1"),
    ("conv2d padding type", lambda: conv2d(f32(1, 1, 5, 5), f32(1, 1, 3, 3), padding=1.5), ValueError,
     "padding must be an int or a pair of ints, got 1.5"),
    ("max_pool2d rank", lambda: max_pool2d(f32(1, 4, 4), 2), ValueError, "max_pool2d: x must be (N, C, H, W)"),
    ("clip bounds", lambda: f32(2).clip(1.0, 0.0), ValueError, "clip: low=1.0 is greater than high=0.0"),
    ("pow tensor exponent", lambda: f32(2) ** f32(2), TypeError, "pow: exponent must be a Python number"),
    ("backward non-scalar", lambda: (T(np.ones(2), requires_grad=True) * 2.0).backward(), RuntimeError,
     "needs a scalar; this tensor has shape (2,)"),
    ("backward grad shape", lambda: (T(np.ones(2), requires_grad=True) * 2.0).backward(np.ones(3)), ValueError,
     "grad has shape (3,), tensor has shape (2,)"),
    ("backward twice", backward_twice, RuntimeError, "a second time"),
    ("backward without grad", lambda: f32(1).sum().backward(), RuntimeError, "does not require grad"),
    ("device name", lambda: T(np.ones(2), device="tpu"), ValueError, "device must be one of ('cpu', 'gpu'), got 'tpu'"),
    ("gradcheck eps", lambda: gradcheck(lambda x: x, np.ones(2), eps=0), ValueError, "eps must be positive"),
    ("gradcheck nothing to check", lambda: gradcheck(lambda x: x, np.ones(2, int)), ValueError,
     "no floating-point input"),
    ("gradcheck mode", lambda: gradcheck(lambda x: x, np.ones(2), mode="fast"), ValueError, "mode must be"),
]

LAYERS = [
    ("Linear size", lambda: nn.Linear(0, 2), ValueError, "Linear: in_features must be an integer >= 1, got 0"),
    ("Linear input", lambda: nn.Linear(4, 2)(f32(3, 5)), ValueError, "expected last dimension 4"),
    ("Conv2d integer input", lambda: nn.Conv2d(1, 1, 3)(T(np.ones((1, 1, 4, 4), int))), TypeError,
     "Conv2d: input has dtype int"),
    ("Conv2d channels", lambda: nn.Conv2d(3, 1, 3)(f32(1, 1, 4, 4)), ValueError, "expected input (N, 3, H, W)"),
    ("Dropout p", lambda: nn.Dropout(1.0), ValueError, "Dropout: p must be a finite number >= 0 and < 1, got 1.0"),
    ("BatchNorm momentum", lambda: nn.BatchNorm2d(3, momentum=2), ValueError, "momentum must be in [0, 1], got 2"),
    ("BatchNorm one value", batchnorm_on_one_value, ValueError, "more than one value per feature"),
    ("Sequential item", lambda: nn.Sequential(nn.ReLU(), 3), TypeError, "Sequential: item 1 is a int"),
    ("init name", lambda: nn.Linear(2, 2, init="xavier"), ValueError, "init must be 'he', 'glorot' or 'koch'"),
    ("load_state_dict shape", model_load_wrong_shape, ValueError, "weight: expected shape (3, 2), got (4, 2)"),
    ("SGD lr nan", lambda: optim.SGD(nn.Linear(2, 2).parameters(), lr=float("nan")), ValueError,
     "SGD: lr must be a finite number >= 0, got nan"),
    ("SGD momentum", lambda: optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=1.0), ValueError,
     "SGD: momentum must be a finite number >= 0 and < 1, got 1.0"),
    ("Adam betas", lambda: optim.Adam(nn.Linear(2, 2).parameters(), betas=(0.9,)), ValueError, "Adam: betas must"),
    ("optimizer empty", lambda: optim.Adam([]), ValueError, "Adam: got an empty parameter list"),
    ("StepLR step", lambda: optim.StepLR(optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), 0), ValueError,
     "StepLR: step_size must be an integer >= 1, got 0"),
]

two = T(np.ones((2, 3)))
SIAMESE = [
    ("contrastive margin 0", lambda: losses.contrastive_loss(T(np.ones(2)), [1, 0], margin=0), ValueError,
     "margin must be a finite number > 0, got 0"),
    ("contrastive margin inf", lambda: losses.contrastive_loss(T(np.ones(2)), [1, 0], margin=float("inf")),
     ValueError, "margin must be a finite number > 0, got inf"),
    ("contrastive labels", lambda: losses.contrastive_loss(T(np.ones(2)), [1, 2]), ValueError,
     "same must hold only 0 (different) and 1 (same), got values like [2]"),
    ("contrastive label shape", lambda: losses.contrastive_loss(T(np.ones(2)), [[1], [0]]), ValueError,
     "same has shape (2, 1) but distance has shape (2,)"),
    ("contrastive 2-D distance", lambda: losses.contrastive_loss(two, [1, 0]), ValueError,
     "distance must be a non-empty (N,) tensor"),
    ("triplet shapes", lambda: losses.triplet_loss(two, T(np.ones((3, 3))), two), ValueError,
     "positive has shape (3, 3) but anchor has shape (2, 3)"),
    ("triplet nan", lambda: losses.triplet_loss(two, two, T(np.full((2, 3), np.nan))), ValueError,
     "negative contains NaN or Inf"),
    ("l2 distance inf", lambda: distances.l2_distance(two, T(np.full((2, 3), np.inf))), ValueError,
     "l2_distance: b contains NaN or Inf"),
    ("nt-xent one pair", lambda: losses.nt_xent_loss(T(np.ones((1, 3))), T(np.ones((1, 3)))), ValueError,
     "needs at least 2 pairs"),
    ("nt-xent temperature", lambda: losses.nt_xent_loss(two, two, temperature=-1), ValueError,
     "temperature must be a finite number > 0, got -1"),
    ("chopra q", lambda: losses.chopra_energy_loss(T(np.ones(2)), [1, 0], q=0), ValueError, "q must be"),
    ("reduction", lambda: losses.bce_with_logits(T(np.ones(2)), [1, 0], reduction="avg"), ValueError,
     "reduction must be one of ('mean', 'sum', 'none'), got 'avg'"),
    ("distance name", lambda: losses.triplet_loss(two, two, two, distance="hamming"), ValueError,
     "distance must be one of"),
    ("mse shapes", lambda: losses.mse_loss(two, T(np.ones((2, 2)))), ValueError,
     "mse_loss: prediction has shape (2, 3) and target (2, 2)"),
    ("pair sampler one class", lambda: mining.PairSampler(np.zeros(5, int)), ValueError,
     "PairSampler needs at least 2 classes"),
    ("sampler count", lambda: mining.PairSampler(np.array([0, 0, 1, 1])).sample(0), ValueError,
     "n must be an integer >= 1, got 0"),
    ("batch-hard one label", lambda: mining.batch_hard_triplets(np.ones((3, 2)), np.zeros(3)), ValueError,
     "no valid negative"),
    ("semi-hard margin", lambda: mining.semi_hard_triplets(np.ones((4, 2)), np.array([0, 0, 1, 1]), margin=-1),
     ValueError, "margin must be a finite number > 0, got -1"),
]


def test_at_least_sixty_cases():
    assert len(ENGINE + LAYERS + SIAMESE + FILES + COMMANDS) >= 60


@pytest.mark.parametrize("call, error, text", [c[1:] for c in ENGINE + LAYERS + SIAMESE],
                         ids=[c[0] for c in ENGINE + LAYERS + SIAMESE])
def test_bad_arguments(call, error, text):
    with pytest.raises(error) as raised:
        call()
    assert text in str(raised.value)


# ----- files: archives, images and checkpoints ------------------------------------------------------
def png(width, height):
    """A valid 1-bit PNG of the given size (built by Pillow)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width=60000, height=60000):
    """A tiny PNG whose header declares width x height pixels: decoding it would need gigabytes."""
    import struct
    import zlib

    data = bytearray(png(8, 8))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    return bytes(data)


def zip_of(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def files(tmp_path):
    """A folder of bad files, built once per test."""
    pytest.importorskip("PIL")
    from tinysiam.app.config import TrainConfig
    from tinysiam.app.model import SiameseModel
    from tinysiam.serialization import save, save_checkpoint, write_npz_atomic

    good = tmp_path / "good.npz"
    save_checkpoint(good, SiameseModel(TrainConfig()), config=TrainConfig().to_dict())
    raw = good.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "empty.npz").write_bytes(b"")
    flipped = bytearray(raw)
    for i in range(200, len(flipped) - 200, 97):
        flipped[i] ^= 0xFF
    (tmp_path / "flipped.npz").write_bytes(bytes(flipped))
    write_npz_atomic(tmp_path / "bad_json.npz", {"meta": np.frombuffer(b'{"config": ', np.uint8)})
    write_npz_atomic(tmp_path / "bad_utf8.npz", {"meta": np.frombuffer(b'\xff\xfe{}', np.uint8)})
    write_npz_atomic(tmp_path / "no_meta.npz", {"x": np.ones(2)})
    save(nn.Linear(2, 2), tmp_path / "weights_only.npz")
    save_checkpoint(tmp_path / "no_config.npz", nn.Linear(2, 2), epoch=3)
    np.savez(tmp_path / "pickled.npz", payload=np.array([PickleBomb(tmp_path / "executed")], dtype=object))
    arrays = dict(np.load(good))
    arrays["model/tower.0.weight"] = np.full_like(arrays["model/tower.0.weight"], np.nan)
    np.savez(tmp_path / "nan_weights.npz", **arrays)

    zip_of(tmp_path / "faces.zip", {"att_faces/s1/1.pgm": b"P5 not really"})
    zip_of(tmp_path / "bomb.zip", {"images_background/Greek/character01/0001_01.png": bomb_png()})
    zip_of(tmp_path / "mixed.zip", {"images_background/Greek/character01/0001_01.png": png(105, 105),
                                    "images_background/Greek/character01/0001_02.png": png(50, 50)})
    zip_of(tmp_path / "no_alphabets.zip", {"readme.txt": "hello"})
    zip_of(tmp_path / "no_runs.zip", {"run01/test/item01.png": png(10, 10)})
    member = "images_background/Greek/character01/0001_01.png"
    good_zip = zip_of(tmp_path / "member.zip", {member: png(105, 105)})
    damaged = bytearray(good_zip.read_bytes())
    start = 30 + len(member)  # the local header (30 bytes and the name), then the compressed data
    damaged[start + 5:start + 25] = b"\x00" * 20
    (tmp_path / "damaged_member.zip").write_bytes(bytes(damaged))
    directory = bytearray(good_zip.read_bytes())
    end = directory.rindex(b"PK\x01\x02")  # the central directory entry
    directory[end + 4:end + 30] = b"\xff" * 26
    (tmp_path / "damaged_directory.zip").write_bytes(bytes(directory))
    (tmp_path / "not_a_zip.zip").write_text("plain text")
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + b"\x00" * 8)
    (tmp_path / "idx" / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x00")
    (tmp_path / "empty_folder").mkdir()
    return tmp_path


class PickleBomb:
    """An object whose unpickling would create a file: loading must never run it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _read(name):
    from tinysiam.serialization import read_npz

    return lambda root: read_npz(root / name)


def _meta(name):
    from tinysiam.serialization import read_checkpoint_meta

    return lambda root: read_checkpoint_meta(root / name)


def _model(name):
    from tinysiam.app.model import load_model

    return lambda root: load_model(root / name)


def _omniglot(name):
    from tinysiam.data import load_omniglot

    return lambda root: load_omniglot(root / name)


def _into_linear(name):
    from tinysiam.serialization import load_checkpoint

    return lambda root: load_checkpoint(root / name, nn.Linear(3, 3))


def _optimizer_from(name):
    from tinysiam.serialization import load_checkpoint

    def load(root):
        model = nn.Linear(2, 2)
        load_checkpoint(root / name, model, optim.SGD(model.parameters(), lr=0.1))

    return load


def _lake(name):
    from tinysiam.evaluation.oneshot import load_lake_runs

    return lambda root: load_lake_runs(root / name)


def _faces(name):
    from tinysiam.data import load_att_faces

    return lambda root: load_att_faces(root / name)


def _mnist(root):
    from tinysiam.data import load_mnist

    load_mnist(root / "idx")


def _augment(root):
    from tinysiam.data import affine_augment

    affine_augment(np.ones((1, 1, 4, 4), np.float32), rng=0)


FILES = [
    ("missing checkpoint", _read("nope.npz"), FileNotFoundError, "no such file: {root}/nope.npz"),
    ("empty checkpoint", _read("empty.npz"), ValueError, "{root}/empty.npz is not a readable"),
    ("truncated checkpoint", _read("truncated.npz"), ValueError, "{root}/truncated.npz is not a readable"),
    ("bit-flipped checkpoint", _read("flipped.npz"), ValueError, "{root}/flipped.npz is not a readable"),
    ("checkpoint meta not JSON", _meta("bad_json.npz"), ValueError, "{root}/bad_json.npz: the checkpoint's metadata"),
    ("checkpoint meta not UTF-8", _meta("bad_utf8.npz"), ValueError, "{root}/bad_utf8.npz: the checkpoint's metadata"),
    ("checkpoint without meta", _meta("no_meta.npz"), ValueError, "{root}/no_meta.npz is not a tinysiam checkpoint"),
    ("pickle payload", _read("pickled.npz"), ValueError, "{root}/pickled.npz is not a readable"),
    ("weights-only file as a model", _model("weights_only.npz"), ValueError, "is not a tinysiam checkpoint"),
    ("checkpoint without config", _model("no_config.npz"), ValueError, "no_config.npz is not a training checkpoint"),
    ("checkpoint with NaN weights", _model("nan_weights.npz"), ValueError, "tower.0.weight hold NaN or Inf"),
    ("checkpoint for another model", _into_linear("good.npz"), ValueError, "good.npz does not fit this model"),
    ("checkpoint without optimizer", _optimizer_from("no_config.npz"), ValueError, "holds no optimizer state"),
    ("not a zip", _omniglot("not_a_zip.zip"), ValueError, "{root}/not_a_zip.zip is neither a folder nor a zip"),
    ("damaged zip directory", _omniglot("damaged_directory.zip"), ValueError, "damaged_directory.zip"),
    ("damaged zip member", _omniglot("damaged_member.zip"), ValueError, "damaged_member.zip: member"),
    ("decompression bomb", _omniglot("bomb.zip"), ValueError, "0001_01.png: image too large to decode safely"),
    ("unreadable image", _faces("faces.zip"), ValueError, "att_faces/s1/1.pgm: not a readable image"),
    ("images of two sizes", _omniglot("mixed.zip"), ValueError, "0001_02.png: image is (50, 50)"),
    ("archive of something else", _omniglot("no_alphabets.zip"), ValueError, "no_alphabets.zip is not an Omniglot"),
    ("faces folder without faces", _faces("empty_folder"), ValueError, "empty_folder is not the AT&T faces"),
    ("runs without answer keys", _lake("no_runs.zip"), ValueError, "no_runs.zip holds no runNN/class_labels.txt"),
    ("missing archive", _omniglot("nope.zip"), FileNotFoundError, "no such file or folder: {root}/nope.zip"),
    ("idx magic", _mnist, ValueError, "train-images-idx3-ubyte: magic number"),
    ("augment rng", _augment, TypeError, "rng must be a numpy.random.Generator, got int"),
]


@pytest.mark.parametrize("call, error, text", [c[1:] for c in FILES], ids=[c[0] for c in FILES])
def test_bad_files(files, call, error, text):
    with pytest.raises(error) as raised:
        call(files)
    assert text.format(root=files) in str(raised.value)
    assert not (files / "executed").exists()  # no pickle payload ever ran


# ----- the command line: one line, exit status 2, naming the option or file -----------------------
COMMANDS = [
    ("eval truncated checkpoint", ["eval", "--checkpoint", "{root}/truncated.npz"],
     "--checkpoint {root}/truncated.npz"),
    ("eval damaged meta", ["eval", "--checkpoint", "{root}/bad_json.npz"], "--checkpoint {root}/bad_json.npz"),
    ("eval weights-only file", ["eval", "--checkpoint", "{root}/weights_only.npz"], "is not a tinysiam checkpoint"),
    ("eval runs not a zip", ["eval", "--baseline", "pixels", "--runs", "{root}/not_a_zip.zip"],
     "--runs: {root}/not_a_zip.zip is neither"),
    ("eval runs missing", ["eval", "--baseline", "pixels", "--runs", "{root}/nope"], "no such file or folder"),
    ("eval data-dir missing", ["eval", "--baseline", "mhd", "--data-dir", "{root}/nope"], "is not a folder"),
    ("train faces damaged", ["train", "--data", "faces", "--data-dir", "{root}/faces_dir", "--out", "{root}/o"],
     "att_faces/s1/1.pgm: not a readable image"),
    ("train out below a file", ["train", "--out", "{root}/good.npz/run"], "a file stands where a folder should be"),
    ("train out is a file", ["train", "--out", "{root}/good.npz"], "--out {root}/good.npz is a file"),
    ("train resume damaged", ["train", "--out", "{root}/damaged_run", "--resume"], "damaged_run/last.npz"),
    ("train lr inf", ["train", "--out", "{root}/o", "--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    ("train momentum", ["train", "--out", "{root}/o", "--momentum", "1.5"], "--momentum must be a finite number"),
    ("train unknown loss", ["train", "--out", "{root}/o", "--loss", "hinge"], "argument --loss: invalid choice"),
]


@pytest.mark.parametrize("args, text", [c[1:] for c in COMMANDS], ids=[c[0] for c in COMMANDS])
def test_bad_commands(files, capsys, args, text):
    from tinysiam.app.cli import main

    (files / "faces_dir").mkdir()
    zip_of(files / "faces_dir" / "att_faces.zip", {"att_faces/s1/1.pgm": b"P5 not really"})
    (files / "damaged_run").mkdir()
    (files / "damaged_run" / "last.npz").write_bytes((files / "truncated.npz").read_bytes())
    args = [a.format(root=files) for a in args]
    try:
        status = main(args)
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    err = capsys.readouterr().err
    assert status == 2 and text.format(root=files) in err and err.count("\n") == 1, err
    assert not (files / "o").exists()


def test_a_failing_write_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn")
    from tinysiam.app.cli import main

    args = ["train", "--out", str(tmp_path), "--epochs", "1", "--steps-per-epoch", "2", "--quiet", "--no-plots"]
    assert main(args) == 0
    before = (tmp_path / "last.npz").read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", disk_full)
    assert main(["train", "--out", str(tmp_path), "--resume", "--epochs", "2", "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path}" in err and "No space left on device" in err and err.count("\n") == 1
    assert (tmp_path / "last.npz").read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_results_json_is_valid_after_every_command(tmp_path):
    pytest.importorskip("sklearn")
    from tinysiam.app.cli import main

    assert main(["train", "--out", str(tmp_path), "--epochs", "1", "--steps-per-epoch", "2", "--quiet"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["checkpoint"].endswith("best.npz")


# ----- the second pass: every path as strict as eval, nothing lost at the edges ---------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A short digits run: its last.npz is what the damaged checkpoints below are made from."""
    pytest.importorskip("sklearn")
    from tinysiam.app.cli import main

    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--out", str(out), "--epochs", "1", "--steps-per-epoch", "2", "--quiet", "--no-plots"]) == 0
    return out


def _rewritten(arrays, meta=None, drop=(), add=None):

    arrays = {k: v for k, v in arrays.items() if k not in drop}
    arrays.update(add or {})
    if meta is not None:
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    return arrays


def _damaged_checkpoints(last):
    """name -> (arrays of a damaged copy of ``last``, what the error must say)."""
    from tinysiam.serialization import read_checkpoint

    arrays, meta = read_checkpoint(last)
    weight = "model/tower.0.weight"
    optim_entry = next(k for k in arrays if k.startswith("optim/param"))
    return {
        "wrong_shape": (_rewritten(arrays, add={weight: np.ones((3, 3), np.float32)}), "does not fit the model"),
        "missing_key": (_rewritten(arrays, drop=[weight]), "missing: ['tower.0.weight']"),
        "extra_key": (_rewritten(arrays, add={"model/extra": np.ones(2, np.float32)}), "unexpected: ['extra']"),
        "optimizer": (_rewritten(arrays, add={optim_entry: np.ones(7, np.float32)}), "does not fit the optimizer"),
        "no_config": (_rewritten(arrays, {k: v for k, v in meta.items() if k != "config"}), "has no 'config'"),
        "no_history": (_rewritten(arrays, {k: v for k, v in meta.items() if k != "history"}), "has no 'history'"),
        "epoch_text": (_rewritten(arrays, {**meta, "epoch": "three"}), "'epoch' must be an integer >= 0"),
        "rng": (_rewritten(arrays, {**meta, "rng": {"bit_generator": "MT19937"}}), "'rng' must be the state"),
        "config_other_model": (_rewritten(arrays, {**meta, "config": {**meta["config"], "preset": "mini"}}),
                               "does not fit the model"),
        "npy": (None, "holds a single .npy array"),
    }


@pytest.mark.parametrize("case", ["wrong_shape", "missing_key", "extra_key", "optimizer", "no_config", "no_history",
                                  "epoch_text", "rng", "config_other_model", "npy"])
def test_resuming_a_damaged_checkpoint_is_one_line_and_leaves_it_untouched(trained_run, tmp_path, capsys, case):
    import shutil

    from tinysiam.app.cli import main
    from tinysiam.serialization import write_npz_atomic

    shutil.copytree(trained_run, tmp_path / "run")
    last = tmp_path / "run" / "last.npz"
    arrays, text = _damaged_checkpoints(last)[case]
    if arrays is None:
        np.save(tmp_path / "x.npy", np.ones(3))
        shutil.copy(tmp_path / "x.npy", last)
    else:
        write_npz_atomic(last, arrays)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--resume {last}" in err and text in err and err.count("\n") == 1, err
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before


@pytest.mark.parametrize("command", [["eval", "--checkpoint", "{npz}"], ["verify", "{png}", "{png}", "--checkpoint",
                                                                          "{npz}"],
                                     ["index", "{folder}", "--checkpoint", "{npz}", "--out", "{root}/i.npz"]])
def test_a_npy_file_named_npz_is_one_line_everywhere(tmp_path, capsys, command):
    from tinysiam.app.cli import main
    from tinysiam.serialization import load_checkpoint

    np.save(tmp_path / "x.npy", np.ones(3))
    (tmp_path / "x.npy").rename(tmp_path / "x.npz")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(png(8, 8))
    args = [a.format(npz=tmp_path / "x.npz", png=tmp_path / "images" / "a.png", folder=tmp_path / "images",
                     root=tmp_path) for a in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"--checkpoint {tmp_path / 'x.npz'}" in err and "single .npy array" in err and err.count("\n") == 1
    with pytest.raises(ValueError, match="x.npz is not a readable tinysiam .npz file.*single .npy array"):
        load_checkpoint(tmp_path / "x.npz", nn.Linear(2, 2))  # the API says the same


def zip_with_method(path, member, data, method):
    """A zip whose one member claims compression ``method`` (e.g. 98, PPMd, which Python's zipfile cannot read)."""
    zip_of(path, {member: data})
    raw = bytearray(path.read_bytes())
    raw[8:10] = method.to_bytes(2, "little")  # the local header's method field
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 10:central + 12] = method.to_bytes(2, "little")  # and the central directory's
    path.write_bytes(bytes(raw))
    return path


def test_an_archive_compressed_by_an_unknown_method_is_named(tmp_path):
    from tinysiam.data import load_omniglot

    path = zip_with_method(tmp_path / "ppmd.zip", "images_background/Greek/character01/0001_01.png", png(10, 10), 98)
    with pytest.raises(ValueError, match="ppmd.zip: member images_background/Greek/character01/0001_01.png cannot "
                                         "be read here"):
        load_omniglot(path)


def test_an_answer_key_that_is_not_utf8_is_named(tmp_path):
    from tinysiam.evaluation.oneshot import load_lake_runs

    path = zip_of(tmp_path / "runs.zip", {"run01/class_labels.txt": b"\xff\xfe run01", "run01/test/item01.png":
                                          png(10, 10), "run01/training/class01.png": png(10, 10)})
    with pytest.raises(ValueError, match="runs.zip: run01/class_labels.txt is not UTF-8 text"):
        load_lake_runs(path)


def test_every_entry_of_a_state_dict_is_saved_whatever_its_name(tmp_path):
    from tinysiam.serialization import read_npz

    state = {"allow_pickle": np.ones(2), "file": np.zeros(3), "a/b.c": np.arange(4)}
    ts.save(state, tmp_path / "state.npz")
    loaded = read_npz(tmp_path / "state.npz")
    assert set(loaded) == set(state) and all(np.array_equal(loaded[k], v) for k, v in state.items())


def test_an_nt_xent_temperature_too_small_for_the_dtype_is_refused():
    z = T(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="temperature 1e-40 is too small for float32 embeddings"):
        losses.nt_xent_loss(z, z, temperature=1e-40)
    assert np.isfinite(losses.nt_xent_loss(z, z, temperature=1e-30).item())  # small, but 1 / T still fits


@pytest.mark.parametrize("files_in_zip, text", [
    ({"att_faces/s1/1.pgm": "one", "att_faces/s2/1.pgm": "one"}, "att_faces/s2/1.pgm is the same file as "
                                                                 "att_faces/s1/1.pgm"),
    ({"att_faces/s1/1.pgm": "one", "att_faces/s1 copy/1.pgm": "two"}, "att_faces/s1 copy/1.pgm is not at sN/M.pgm"),
])
def test_a_faces_folder_holding_a_subject_twice_is_refused(tmp_path, files_in_zip, text):
    from tinysiam.data import load_att_faces

    path = zip_of(tmp_path / "faces.zip", {name: b"P5 2 2 255\n" + tag.encode().ljust(4, b"-")
                                           for name, tag in files_in_zip.items()})
    with pytest.raises(ValueError, match=text):
        load_att_faces(path)


def test_eval_says_when_it_uses_the_bundled_runs(tmp_path, capsys, monkeypatch):
    from tinysiam.app.cli import main

    monkeypatch.delenv("TINYSIAM_DATA", raising=False)
    assert main(["eval", "--protocol", "lake", "--baseline", "pixels", "--out", str(tmp_path)]) == 0
    assert "Lake's runs from the demo bundle's copy of all_runs.zip" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval_lake.json").read_text())["runs"].startswith("the demo bundle's copy")


# every command checks its options by train's rules, in train's words (engine/checks.py)
OPTIONS = [
    (["gradcheck", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    (["eval", "--baseline", "pixels", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    (["eval", "--checkpoint", "x.npz", "--protocol", "nway", "--way", "1"], "--way must be an integer >= 2, got 1"),
    (["folds", "--out", "o", "--folds", "1"], "--folds must be an integer >= 3, got 1"),
    (["verify", "a", "b", "--checkpoint", "x.npz", "--far", "2"], "--far must be a finite number > 0 and < 1, got 2.0"),
    (["index", "images", "--checkpoint", "x.npz", "--out", "i.npz", "--batch", "0"],
     "--batch must be an integer >= 1, got 0"),
    (["search", "i.npz", "q.png", "-k", "0"], "-k must be an integer >= 1, got 0"),
    (["search", "i.npz", "q.png", "--nprobe", "0"], "--nprobe must be an integer >= 1, got 0"),
    (["search", "i.npz", "q.png", "--ef-search", "-2"], "--ef-search must be an integer >= 1, got -2"),
    (["bench", "--repeat", "0"], "--repeat must be an integer >= 1, got 0"),
    (["bench", "--threads", "0"], "--threads must be an integer >= 1, got 0"),
]


@pytest.mark.parametrize("args, text", OPTIONS, ids=[" ".join(a[:1] + a[-2:]) for a, _ in OPTIONS])
def test_every_command_checks_its_options_like_train(tmp_path, capsys, monkeypatch, args, text):
    from tinysiam.app.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not list(tmp_path.iterdir())  # nothing written
