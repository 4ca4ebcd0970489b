"""Optional download of the official data files, checksum verified, into a cache folder.

The cache is ``~/.cache/tinysiam`` unless ``TINYSIAM_CACHE`` or ``cache_dir``
says otherwise. A file is written under a temporary name and renamed only
after its checksum matched, so the cache never holds a partial or wrong file.
Nothing here runs unless you call ``fetch``: the readers work on local files.
"""
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

_OMNIGLOT = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
_MNIST = "https://storage.googleapis.com/cvdf-datasets/mnist/"

# name -> (url, algorithm, checksum). md5 values are those torchvision publishes for the same files.
FILES = {
    "images_background_small1.zip": (_OMNIGLOT + "images_background_small1.zip", "sha256",
                                     "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4"),
    "images_background_small2.zip": (_OMNIGLOT + "images_background_small2.zip", "sha256",
                                     "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f"),
    "all_runs.zip": (_OMNIGLOT + "one-shot-classification/all_runs.zip", "sha256",
                     "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325"),
    "images_background.zip": (_OMNIGLOT + "images_background.zip", "md5", "68d2efa1b9178cc56df9314c21c6e718"),
    "images_evaluation.zip": (_OMNIGLOT + "images_evaluation.zip", "md5", "6b91aef0f799c5bb55b94e3f2daec811"),
    "train-images-idx3-ubyte.gz": (_MNIST + "train-images-idx3-ubyte.gz", "md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels-idx1-ubyte.gz": (_MNIST + "train-labels-idx1-ubyte.gz", "md5", "d53e105ee54ea40749a09fcbcd1e9432"),
    "t10k-images-idx3-ubyte.gz": (_MNIST + "t10k-images-idx3-ubyte.gz", "md5", "9fb629c4189551a2d022fa330f9573f3"),
    "t10k-labels-idx1-ubyte.gz": (_MNIST + "t10k-labels-idx1-ubyte.gz", "md5", "ec29112dd5afa0611ce80d1b7f02629c"),
}


def cache_folder(cache_dir=None):
    return Path(cache_dir or os.environ.get("TINYSIAM_CACHE") or Path.home() / ".cache" / "tinysiam")


def file_checksum(path, algorithm):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name, cache_dir=None, url=None, checksum=None, algorithm="sha256"):
    """Path of the verified file ``name`` in the cache, downloading it first if needed.

    ``name`` is a key of ``FILES``, or any name when ``url`` and ``checksum`` are given.
    """
    if url is None:
        if name not in FILES:
            raise ValueError(f"unknown data file {name!r}; known: {sorted(FILES)}")
        url, algorithm, checksum = FILES[name]
    if checksum is None:
        raise ValueError(f"fetch({name!r}): a checksum is required to verify the download")
    target = cache_folder(cache_dir) / name
    if target.is_file() and file_checksum(target, algorithm) == checksum:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        got = file_checksum(tmp, algorithm)
        if got != checksum:
            raise ValueError(f"{url}: {algorithm} checksum {got} does not match the expected {checksum}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
