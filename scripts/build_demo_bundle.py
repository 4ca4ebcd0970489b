"""Build tinysiam/data/demo/omniglot_demo.npz, the demo's offline copy of Omniglot, from the official archives.

    python scripts/build_demo_bundle.py [--data-dir ../shared/data/omniglot] [--out PATH]

Reads ``images_background_small1.zip``, ``images_background_small2.zip`` and
``all_runs.zip`` (Lake's Omniglot repository, MIT licence) with the package's
own readers, packs every image one bit per pixel at its full 105x105 size
(``tinysiam.data.bundle`` lists the entries), and writes one .npz (a zip of
.npy files) compressed with LZMA, then prints its size and sha256.

The output is the same byte for byte on every run: the entries are written in
sorted order, each with a fixed timestamp and fixed attributes, which
``np.savez`` does not do (it stamps the current time). The bytes depend only
on the archives, NumPy's .npy format and the LZMA library. After an intended
change of the content, put the printed sha256 into
``tinysiam.data.bundle.DEMO_BUNDLE_SHA256``; the loaders refuse any other file.
"""
import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, installed or not

from tinysiam.data.bundle import DEMO_BUNDLE, pack_images  # noqa: E402
from tinysiam.data.omniglot import load_omniglot  # noqa: E402
from tinysiam.evaluation.oneshot import load_lake_runs  # noqa: E402
from tinysiam.serialization import write_bytes_atomic  # noqa: E402

ARCHIVES = ("images_background_small1.zip", "images_background_small2.zip", "all_runs.zip")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def bundle_entries(data_dir):
    """name -> array: the background set and Lake's runs, one bit per pixel."""
    data_dir = Path(data_dir)
    missing = [name for name in ARCHIVES if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"--data-dir {data_dir} lacks {', '.join(missing)}")
    background = load_omniglot([data_dir / ARCHIVES[0], data_dir / ARCHIVES[1]])
    runs = load_lake_runs(data_dir / ARCHIVES[2])
    if len({(len(run.supports), len(run.queries)) for run in runs}) != 1:
        raise ValueError(f"{data_dir / ARCHIVES[2]}: the runs differ in size; the bundle stores them as one array")
    return {
        "background_bits": pack_images(background.images),
        "background_labels": background.labels,
        "class_names": np.array(background.class_names),
        "class_alphabets": np.array(background.groups),
        "image_shape": np.array(background.images.shape[2:], dtype=np.int64),
        "run_names": np.array([run.name for run in runs]),
        "run_supports": np.stack([pack_images(run.supports) for run in runs]),
        "run_queries": np.stack([pack_images(run.queries) for run in runs]),
        "run_answers": np.stack([run.answers for run in runs]),
    }


def npz_bytes(entries):
    """A deterministic .npz (readable by ``np.load``): sorted entries, fixed timestamps, LZMA."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            array = io.BytesIO()
            np.lib.format.write_array(array, np.ascontiguousarray(entries[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_LZMA
            info.create_system, info.external_attr = 3, 0o644 << 16  # made on Unix, a plain rw-r--r-- file
            archive.writestr(info, array.getvalue())
    return buffer.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=REPO.parent / "shared" / "data" / "omniglot", type=Path,
                        help="folder holding the three Omniglot archives")
    parser.add_argument("--out", default=DEMO_BUNDLE, type=Path, help="the .npz to write")
    args = parser.parse_args(argv)
    data = npz_bytes(bundle_entries(args.data_dir))
    write_bytes_atomic(args.out, data)
    print(f"{args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
