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
        pytest.skip(f"real data sets not found at {root} (set TINYSIAM_DATA to the folder holding omniglot/ and att_faces/)")
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


def _needs(module, package, extra):
    """Skip a test where the optional ``module`` is not installed, saying which extra installs it."""
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"needs {package} (pip install -e '.[{extra}]')")


needs_pillow = _needs("PIL", "Pillow", "data")
needs_sklearn = _needs("sklearn", "scikit-learn", "data")
needs_matplotlib = _needs("matplotlib", "matplotlib", "plot")
