"""Small end-to-end runs (well under a second each): the engine learns, and shared weights sum their gradients."""
import numpy as np

import tinysiam as ts
from tinysiam import nn, optim
from tinysiam.app.catalogue.layers import layer_check
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.siamese.losses import bce_with_logits


def test_mlp_fits_xor():
    rng = np.random.default_rng(0)
    x = ts.Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32))
    y = np.array([[0], [1], [1], [0]], np.float32)
    model = nn.Sequential(nn.Linear(2, 8, rng=rng), nn.Tanh(), nn.Linear(8, 1, rng=rng))
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(300):
        loss = ((model(x) - ts.Tensor(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.2 and losses[-1] < 0.01
    np.testing.assert_array_equal(model(x).numpy() > 0.5, y > 0.5)


def test_conv_net_separates_two_synthetic_classes():
    rng = np.random.default_rng(0)
    n = 64
    labels = rng.integers(0, 2, n)
    images = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    images[labels == 0, :, :, 3:5] += 1.0  # class 0: a vertical bar
    images[labels == 1, :, 3:5, :] += 1.0  # class 1: a horizontal bar
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(64, 1, rng=rng))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, target = ts.Tensor(images), ts.Tensor(labels.astype(np.float32))
    losses = []
    for _ in range(60):
        loss = bce_with_logits(model(x).reshape(n), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.5 and losses[-1] < 0.05
    model.eval()  # running statistics now; the classes stay apart
    np.testing.assert_array_equal(model(x).numpy().ravel() > 0, labels == 1)


class AppliedTwice(nn.Module):
    """One tower applied to two inputs, as in a Siamese network."""

    def __init__(self, rng):
        super().__init__()
        self.tower = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 2, rng=rng))

    def forward(self, x):
        return self.tower(x) * self.tower(x * x)


def test_a_module_applied_twice_gets_the_sum_of_both_gradients():
    rng = np.random.default_rng(0)
    model = AppliedTwice(rng).astype(np.float64)
    x = rng.standard_normal((5, 3))
    model(ts.Tensor(x)).sum().backward()
    # the same computation with two separate copies of the tower
    left, right = AppliedTwice(rng).tower.astype(np.float64), AppliedTwice(rng).tower.astype(np.float64)
    left.load_state_dict(model.tower.state_dict())
    right.load_state_dict(model.tower.state_dict())
    (left(ts.Tensor(x)) * right(ts.Tensor(x * x))).sum().backward()
    for (name, p), a, b in zip(model.named_parameters(), left.parameters(), right.parameters()):
        assert not np.allclose(a.grad, b.grad), name  # the branches contribute differently...
        np.testing.assert_allclose(p.grad, a.grad + b.grad, err_msg=name)  # ...and the shared weight gets both
    # and finite differences agree, with each parameter perturbed in both branches at once
    check = layer_check("applied twice", AppliedTwice(rng), rng.standard_normal((5, 3)))
    gradcheck(check.fn, *check.inputs)
