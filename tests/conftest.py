"""Shared fixtures: where the real data sets live, which devices to test on, which optional packages are here."""
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root():
    env = os.environ.get("TINYSIAM_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_root():
    """The folder holding omniglot/ and att_faces/; tests skip where it is absent."""
    root = _data_root()
    if not root.is_dir():
        pytest.skip(f"real data sets not found at {root} "
                    "(set TINYSIAM_DATA to the folder holding omniglot/ and att_faces/)")
    return root


from tinysiam.engine.backend import gpu_available, to_device  # noqa: E402

DEVICES = ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not gpu_available(), reason="CuPy with a CUDA device is not available"))]


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test on NumPy, and on CuPy too where a GPU is usable."""
    return request.param


def on(device, *arrays):
    """The arrays moved to ``device``."""
    return [to_device(a, device) for a in arrays]


SICK = _data_root() / "sick2014"
needs_sick = pytest.mark.skipif(not (SICK / "SICK_train.txt").is_file(),
                                reason=f"the SICK release is not at {SICK} (set TINYSIAM_DATA to the data folder)")


def _needs(module, package, extra):
    """Skip a test where the optional ``module`` is not installed, saying which extra installs it."""
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"needs {package} (pip install -e '.[{extra}]')")


needs_pillow = _needs("PIL", "Pillow", "data")
needs_sklearn = _needs("sklearn", "scikit-learn", "data")
needs_matplotlib = _needs("matplotlib", "matplotlib", "plot")


# ----- small trained models, for the commands that use a checkpoint -----------------------------------
def pattern_images(per_class, seed, n_classes=6):
    """8x8 images of ``n_classes`` fixed random patterns (the same for every seed) under fresh noise."""
    import numpy as np

    from tinysiam.data import LabelledImages

    patterns = np.random.default_rng(12345).random((n_classes, 8, 8)) < 0.5
    labels = np.repeat(np.arange(n_classes), per_class)
    noise = np.random.default_rng(seed).normal(0, 0.06, (len(labels), 8, 8))
    images = np.clip(0.1 + 0.8 * patterns[labels] + noise, 0, 1).astype(np.float32)[:, None]
    return LabelledImages(images, labels, [f"pattern{i}" for i in range(n_classes)])


def write_png(path, image):
    """An image in [0, 1] written as an 8-bit grey PNG (folders made as needed); returns the path."""
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(np.squeeze(image) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="session")
def calibrated_checkpoint(tmp_path_factory):
    """``make(loss)`` -> best.npz of a digits-preset run trained briefly on the patterns (validated and
    calibrated by the trainer on ``pattern_images(10, seed=2)``)."""
    from tinysiam.app.config import TrainConfig
    from tinysiam.app.runs import RunFolder
    from tinysiam.app.training import Trainer

    made = {}

    def make(loss="contrastive"):
        if loss not in made:
            out = tmp_path_factory.mktemp(f"trained-{loss}")
            config = TrainConfig(preset="digits", loss=loss, epochs=1, steps_per_epoch=60, batch=32, val_way=3,
                                 val_episodes=20, lr=3e-3)
            with RunFolder(out).open("new") as run:
                Trainer(config, pattern_images(20, seed=1), pattern_images(10, seed=2), run, progress=False).fit()
            made[loss] = out / "best.npz"
        return made[loss]

    return make
