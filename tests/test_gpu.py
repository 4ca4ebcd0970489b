"""CuPy runs the same code: GPU results equal NumPy results (skipped without a usable GPU)."""
import numpy as np
import pytest

import tinysiam as ts
from tinysiam import nn
from tinysiam.app import catalogue
from tinysiam.data import affine_augment
from tinysiam.siamese import KochHead, TwinNetwork, losses

pytestmark = pytest.mark.skipif(not ts.gpu_available(), reason="CuPy with a CUDA device is not available")


def test_whole_gradient_catalogue_passes_on_the_gpu():
    rows = catalogue.run_checks(catalogue.all_checks(), device="gpu")
    failed = [r["name"] + ": " + r["message"] for r in rows if not r["passed"]]
    assert not failed, "\n".join(failed)


def test_a_koch_training_step_matches_the_cpu():
    rng = np.random.default_rng(0)
    x1, x2 = rng.random((4, 1, 20, 20)), rng.random((4, 1, 20, 20))
    same = np.array([1.0, 0.0, 1.0, 0.0])
    results = {}
    for device in ("cpu", "gpu"):
        rng = np.random.default_rng(1)
        tower = nn.Sequential(nn.Conv2d(1, 4, 5, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(4, 8, 3, padding=1, rng=rng), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                              nn.Linear(8 * 8 * 8, 16, rng=rng), nn.Sigmoid())
        model = TwinNetwork(tower, KochHead(16, rng=rng)).astype(np.float64).to(device)
        loss = losses.bce_with_logits(model(ts.Tensor(x1, device=device), ts.Tensor(x2, device=device)),
                                      ts.Tensor(same, device=device))
        loss.backward()
        results[device] = (loss.item(), {n: ts.backend.to_numpy(p.grad) for n, p in model.named_parameters()})
    assert results["gpu"][0] == pytest.approx(results["cpu"][0], rel=1e-10)
    for name, grad in results["cpu"][1].items():
        np.testing.assert_allclose(results["gpu"][1][name], grad, rtol=1e-8, atol=1e-12)


def test_augmentation_runs_on_cupy_and_matches_numpy():
    images = np.random.default_rng(0).random((3, 1, 12, 12)).astype(np.float32)
    cpu = affine_augment(images, np.random.default_rng(4))
    gpu = affine_augment(ts.backend.to_device(images, "gpu"), np.random.default_rng(4))
    np.testing.assert_allclose(ts.backend.to_numpy(gpu), cpu, atol=1e-5)
