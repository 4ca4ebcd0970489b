"""fetch(): checksum-verified downloads into the cache, from archives the tests build and serve locally."""
import functools
import hashlib
import http.server
import threading
import zipfile

import pytest

from tinysiam.data.download import FILES, DataFile, cache_folder, fetch, file_checksum


@pytest.fixture
def archive(tmp_path):
    """A small zip to serve, and its bytes."""
    path = tmp_path / "served" / "tiny.zip"
    path.parent.mkdir()
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("run01/class_labels.txt", "run01/test/item01.png run01/training/class01.png\n")
    return path, path.read_bytes()


def register(monkeypatch, name, url, data, algorithm="sha256", checksum=None):
    checksum = checksum or hashlib.new(algorithm, data).hexdigest()
    monkeypatch.setitem(FILES, name, DataFile(url, algorithm, checksum))


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_fetch_downloads_verifies_and_then_reuses(monkeypatch, tmp_path, archive, algorithm):
    source, data = archive
    register(monkeypatch, "tiny.zip", source.as_uri(), data, algorithm)
    path = fetch("tiny.zip", cache_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "tiny.zip" and path.read_bytes() == data
    source.unlink()  # a second call must not download: the verified copy is used
    assert fetch("tiny.zip", cache_dir=tmp_path / "cache") == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.zip"]  # no temporary file left


def test_a_damaged_cached_copy_is_downloaded_again(monkeypatch, tmp_path, archive):
    source, data = archive
    register(monkeypatch, "tiny.zip", source.as_uri(), data)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "tiny.zip").write_bytes(data[:-5])
    assert fetch("tiny.zip", cache_dir=tmp_path / "cache").read_bytes() == data


def test_checksum_mismatch_deletes_the_download_and_names_both_digests(monkeypatch, tmp_path, archive):
    source, data = archive
    wrong = "0" * 64
    register(monkeypatch, "tiny.zip", source.as_uri(), data, checksum=wrong)
    got = hashlib.sha256(data).hexdigest()
    with pytest.raises(ValueError, match=f"sha256 checksum is {got}, expected {wrong}"):
        fetch("tiny.zip", cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_over_http_from_a_local_server(monkeypatch, tmp_path, archive):
    source, data = archive
    handler = functools.partial(QuietHandler, directory=str(source.parent))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}/"
            register(monkeypatch, "tiny.zip", base + "tiny.zip", data)
            assert fetch("tiny.zip", cache_dir=tmp_path / "cache").read_bytes() == data
            register(monkeypatch, "gone.zip", base + "gone.zip", data)
            with pytest.raises(ConnectionError, match=f"cannot download gone.zip from {base}gone.zip"):
                fetch("gone.zip", cache_dir=tmp_path / "cache")
        finally:
            server.shutdown()
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["tiny.zip"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_cache_folder_argument_then_environment_then_home(monkeypatch, tmp_path, archive):
    source, data = archive
    register(monkeypatch, "tiny.zip", source.as_uri(), data)
    monkeypatch.setenv("TINYSIAM_CACHE", str(tmp_path / "from_env"))
    assert fetch("tiny.zip") == tmp_path / "from_env" / "tiny.zip"
    assert cache_folder(tmp_path / "given") == tmp_path / "given"
    monkeypatch.delenv("TINYSIAM_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_folder() == tmp_path / "home" / ".cache" / "tinysiam"


def test_unknown_names_and_algorithms(tmp_path):
    with pytest.raises(ValueError, match="unknown data file 'imagenet.tar'; known: all_runs.zip"):
        fetch("imagenet.tar", cache_dir=tmp_path)
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="algorithm must be 'sha256' or 'md5', got 'crc32'"):
        file_checksum(tmp_path / "f", "crc32")


def test_registry_is_complete_and_well_formed():
    expected = {"images_background.zip", "images_evaluation.zip", "images_background_small1.zip",
                "images_background_small2.zip", "all_runs.zip", "att_faces.zip", "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert set(FILES) == expected
    for name, entry in FILES.items():
        assert entry.url.startswith("https://") and entry.url.endswith("/" + name)
        assert len(entry.checksum) == {"sha256": 64, "md5": 32}[entry.algorithm]
        int(entry.checksum, 16)  # hexadecimal
    # a new entry names who publishes its checksum; these two have no published value
    assert {name for name, entry in FILES.items() if not entry.published_by} == {"all_runs.zip", "att_faces.zip"}


@pytest.mark.parametrize("folder, name", [("omniglot", "images_background_small1.zip"),
                                          ("omniglot", "images_background_small2.zip"),
                                          ("omniglot", "all_runs.zip"), ("att_faces", "att_faces.zip")])
def test_registered_checksums_match_the_local_copies(data_root, folder, name):
    assert file_checksum(data_root / folder / name, FILES[name].algorithm) == FILES[name].checksum

