"""Optional download of the official data files into a cache folder, checksum verified.

The cache is ``~/.cache/tinysiam`` unless the ``TINYSIAM_CACHE`` environment
variable or the ``cache_dir`` argument says otherwise. A download is written
under a temporary name in the cache folder and renamed only once its checksum
matches, so the cache never holds a partial or a wrong file. Nothing here runs
unless ``fetch`` is called: the readers work on local files.
"""
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataFile:
    url: str
    algorithm: str  # "sha256" or "md5"
    checksum: str  # hex digest
    published_by: str = ""  # who publishes this checksum for the official file; "" where nobody does


_OMNIGLOT = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision maintains
_TORCHVISION = "torchvision (datasets/omniglot.py, datasets/mnist.py)"
_TFDS = "TensorFlow Datasets (url_checksums/omniglot.txt)"

# The authors publish no checksums. Where a widely used loader publishes one for the
# same official file, that value is used and named; all_runs.zip and att_faces.zip
# have no published checksum anywhere we know of, so theirs were computed on the copies
# this project tests with, and a changed upstream file will fail their check.
FILES = {
    "images_background_small1.zip": DataFile(
        _OMNIGLOT + "images_background_small1.zip", "sha256",
        "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4", _TFDS),
    "images_background_small2.zip": DataFile(
        _OMNIGLOT + "images_background_small2.zip", "sha256",
        "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f", _TFDS),
    "all_runs.zip": DataFile(
        _OMNIGLOT + "one-shot-classification/all_runs.zip", "sha256",
        "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325"),
    "images_background.zip": DataFile(_OMNIGLOT + "images_background.zip", "md5",
                                      "68d2efa1b9178cc56df9314c21c6e718", _TORCHVISION),
    "images_evaluation.zip": DataFile(_OMNIGLOT + "images_evaluation.zip", "md5",
                                      "6b91aef0f799c5bb55b94e3f2daec811", _TORCHVISION),
    "train-images-idx3-ubyte.gz": DataFile(_MNIST + "train-images-idx3-ubyte.gz", "md5",
                                           "f68b3c2dcbeaaa9fbdd348bbdeb94873", _TORCHVISION),
    "train-labels-idx1-ubyte.gz": DataFile(_MNIST + "train-labels-idx1-ubyte.gz", "md5",
                                           "d53e105ee54ea40749a09fcbcd1e9432", _TORCHVISION),
    "t10k-images-idx3-ubyte.gz": DataFile(_MNIST + "t10k-images-idx3-ubyte.gz", "md5",
                                          "9fb629c4189551a2d022fa330f9573f3", _TORCHVISION),
    "t10k-labels-idx1-ubyte.gz": DataFile(_MNIST + "t10k-labels-idx1-ubyte.gz", "md5",
                                          "ec29112dd5afa0611ce80d1b7f02629c", _TORCHVISION),
    "att_faces.zip": DataFile(  # the Cambridge laboratory's original address
        "https://www.cl.cam.ac.uk/Research/DTG/attarchive/pub/data/att_faces.zip", "sha256",
        "17d875c23692b3f298a2d329d4b38cc313444dca0edb80b533ac57cc08403ab9"),
}


def cache_folder(cache_dir=None):
    """``cache_dir`` if given, else ``$TINYSIAM_CACHE``, else ``~/.cache/tinysiam``."""
    return Path(cache_dir or os.environ.get("TINYSIAM_CACHE") or Path.home() / ".cache" / "tinysiam")


def file_checksum(path, algorithm):
    """Hex digest of the file at ``path`` ("sha256" or "md5"), read in 1 MiB blocks."""
    if algorithm not in ("sha256", "md5"):
        raise ValueError(f"algorithm must be 'sha256' or 'md5', got {algorithm!r}")
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name, cache_dir=None):
    """Path of the verified file ``name`` (a key of ``FILES``) in the cache, downloading it if needed.

    A file already in the cache with the right checksum is not downloaded again.
    A download whose checksum differs is deleted and raises ValueError.
    """
    if name not in FILES:
        raise ValueError(f"unknown data file {name!r}; known: {', '.join(sorted(FILES))}")
    entry = FILES[name]
    target = cache_folder(cache_dir) / name
    if target.is_file() and file_checksum(target, entry.algorithm) == entry.checksum:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(entry.url, timeout=60) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
            except urllib.error.URLError as error:
                raise ConnectionError(f"cannot download {name} from {entry.url}: {error.reason}") from None
        got = file_checksum(temporary, entry.algorithm)
        if got != entry.checksum:
            raise ValueError(f"{name} from {entry.url}: {entry.algorithm} checksum is {got}, "
                             f"expected {entry.checksum}; the download was deleted")
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
