"""Small end-to-end training runs: the engine learns."""
import numpy as np

import tinysiam as ts
from tinysiam import nn, optim


def test_mlp_fits_xor():
    rng = np.random.default_rng(0)
    x = ts.Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32))
    y = ts.Tensor(np.array([[0], [1], [1], [0]], np.float32))
    model = nn.Sequential(nn.Linear(2, 8, rng=rng), nn.Tanh(), nn.Linear(8, 1, rng=rng))
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01


def test_conv_net_separates_two_synthetic_classes():
    rng = np.random.default_rng(0)
    n = 64
    labels = rng.integers(0, 2, n)
    images = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    images[labels == 0, :, :, 3:5] += 1.0  # class 0: a vertical bar
    images[labels == 1, :, 3:5, :] += 1.0  # class 1: a horizontal bar
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64, 1, rng=rng))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    target = ts.Tensor(labels.astype(np.float32))
    from tinysiam.losses import bce_with_logits

    first = None
    for _ in range(60):
        loss = bce_with_logits(model(ts.Tensor(images)).reshape(n), target)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first > 0.5 and loss.item() < 0.05
