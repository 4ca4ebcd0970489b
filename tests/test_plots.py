"""Plots are written as valid PNG files, atomically."""
import numpy as np
import pytest
from conftest import needs_matplotlib

from tinysiam.evaluation import plots


def is_png(path):
    from PIL import Image  # matplotlib depends on Pillow

    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 50


@needs_matplotlib
def test_every_plot_writes_a_png(tmp_path):
    rng = np.random.default_rng(0)
    history = [{"epoch": i, "train_loss": 1 / i, "val_5way_accuracy": 0.5 + i / 10} for i in range(1, 4)]
    paths = [
        plots.plot_history(history, tmp_path / "loss.png"),
        plots.plot_roc(np.array([0, 0.2, 1]), np.array([0, 0.8, 1]), tmp_path / "roc.png", auc=0.8, eer=0.2),
        plots.plot_embeddings_2d(rng.standard_normal((30, 5)), np.repeat(np.arange(3), 10), tmp_path / "emb.png"),
        plots.plot_one_shot(rng.random((8, 8)), rng.random((5, 1, 8, 8)), 2, 3, tmp_path / "one_shot.png"),
    ]
    assert all(is_png(p) for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.png", "loss.png", "one_shot.png", "roc.png"]


@needs_matplotlib
def test_a_failed_plot_leaves_the_old_file(tmp_path):
    path = tmp_path / "one_shot.png"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match="chosen=7"):
        plots.plot_one_shot(np.zeros((4, 4)), np.zeros((3, 1, 4, 4)), 7, 0, path)
    assert path.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_pca_of_points_on_a_line():
    t = np.linspace(-1, 1, 20)
    xy = plots.pca_2d(np.stack([t, 2 * t, -t], axis=1))
    np.testing.assert_allclose(xy[:, 1], 0, atol=1e-12)
    np.testing.assert_allclose(np.abs(xy[:, 0]), np.abs(t) * np.sqrt(6))
