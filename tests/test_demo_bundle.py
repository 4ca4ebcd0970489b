"""The demo bundle: its checksum, its content, and that the build script remakes it from the archives byte for byte."""
import hashlib
import importlib.util

import numpy as np
import pytest
from conftest import REPO

from tinysiam.data import load_demo_background, load_demo_runs, load_omniglot
from tinysiam.data.bundle import DEMO_BUNDLE, DEMO_BUNDLE_SHA256, pack_images, read_demo_bundle, unpack_images
from tinysiam.evaluation.oneshot import load_lake_runs

ARCHIVES = ("images_background_small1.zip", "images_background_small2.zip", "all_runs.zip")


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("build_demo_bundle", REPO / "scripts" / "build_demo_bundle.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def archives(data_root):
    folder = data_root / "omniglot"
    missing = [name for name in ARCHIVES if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"the official Omniglot archives {missing} are not in {folder}")
    return folder


def test_shipped_bundle_is_small_and_has_the_recorded_checksum():
    data = DEMO_BUNDLE.read_bytes()
    assert len(data) < 1_000_000
    assert hashlib.sha256(data).hexdigest() == DEMO_BUNDLE_SHA256
    assert "Permission is hereby granted" in (DEMO_BUNDLE.parent / "LICENSE-omniglot").read_text()


def test_background_set_shapes_names_and_alphabets():
    background = load_demo_background(size=(28, 28))
    assert background.images.shape == (4840, 1, 28, 28) and background.images.dtype == np.float32
    assert len(background.class_names) == 242 and np.all(np.bincount(background.labels) == 20)
    assert sorted(set(background.groups)) == ["Balinese", "Early_Aramaic", "Greek", "Japanese_(katakana)",
                                              "Korean", "Latin", "Sanskrit", "Tagalog"]
    assert all(name.startswith(f"{alphabet}/character")
               for name, alphabet in zip(background.class_names, background.groups))
    full = load_demo_background()
    assert full.images.shape == (4840, 1, 105, 105) and set(np.unique(full.images)) == {0.0, 1.0}


def test_runs_have_twenty_supports_twenty_queries_and_one_query_per_support():
    runs = load_demo_runs()
    assert [run.name for run in runs] == [f"run{i:02d}" for i in range(1, 21)]
    for run in runs:
        assert run.supports.shape == run.queries.shape == (20, 1, 105, 105)
        assert sorted(run.answers) == list(range(20))  # Lake's runs: each character is asked once
    assert load_demo_runs(size=(28, 28))[0].queries.shape == (20, 1, 28, 28)


def test_a_damaged_or_missing_bundle_is_refused(tmp_path):
    damaged = tmp_path / "omniglot_demo.npz"
    data = bytearray(DEMO_BUNDLE.read_bytes())
    data[len(data) // 2] ^= 1
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{damaged}.*sha256"):
        load_demo_runs(path=damaged)
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        read_demo_bundle(tmp_path / "nothing.npz")


def test_pack_and_unpack_round_trip_and_refuse_grey_images():
    images = (np.random.default_rng(0).random((3, 1, 5, 7)) < 0.3).astype(np.float32)
    bits = pack_images(images)
    assert bits.shape == (3, 5) and bits.dtype == np.uint8  # 35 bits -> 5 bytes
    np.testing.assert_array_equal(unpack_images(bits, (5, 7)), images)
    with pytest.raises(ValueError, match="binary"):
        pack_images(images * 0.5)


def test_loaders_return_what_the_archive_readers_return(archives):
    size = (28, 28)
    expected = load_omniglot([archives / ARCHIVES[0], archives / ARCHIVES[1]], size=size)
    got = load_demo_background(size=size)
    np.testing.assert_array_equal(got.images, expected.images)
    np.testing.assert_array_equal(got.labels, expected.labels)
    assert (got.class_names, got.groups) == (expected.class_names, expected.groups)
    for got, expected in zip(load_demo_runs(size=size), load_lake_runs(archives / ARCHIVES[2], size=size), strict=True):
        assert got.name == expected.name
        np.testing.assert_array_equal(got.answers, expected.answers)
        np.testing.assert_array_equal(got.supports, expected.supports)
        np.testing.assert_array_equal(got.queries, expected.queries)


def test_build_script_remakes_the_shipped_file_byte_for_byte(script, archives, tmp_path):
    out = tmp_path / "bundle.npz"
    script.main(["--data-dir", str(archives), "--out", str(out)])
    assert hashlib.sha256(out.read_bytes()).hexdigest() == DEMO_BUNDLE_SHA256


def test_build_script_names_missing_archives(script, tmp_path):
    with pytest.raises(FileNotFoundError, match="all_runs.zip"):
        script.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out.npz")])
    assert not (tmp_path / "out.npz").exists()
