"""Catalogue entries for the layers: gradients w.r.t. the input and every parameter."""
import numpy as np

from ... import nn
from ...siamese.text import DistributionHead, ExpL1Head, TextConvTower, TextTwin
from . import Check
from .ops import away_from_zero, distinct


def module_check(name, group, layer, inputs, train=True):
    """Check a module in float64 w.r.t. its inputs and each of its parameters.

    gradcheck passes its own tensors for the parameters; they stand in for the
    layer's attributes during the call (the layer's registry is untouched).
    """
    layer.astype(np.float64).train(train)
    slots = [(module, attr) for module in layer.modules() for attr in module._parameters]

    def fn(*tensors):
        layer.to(tensors[0].device)  # buffers (BatchNorm's running statistics) follow the inputs
        originals = [getattr(m, a) for m, a in slots]
        for (m, a), value in zip(slots, tensors[len(inputs):]):
            object.__setattr__(m, a, value)
        try:
            return layer(*tensors[:len(inputs)])
        finally:
            for (m, a), original in zip(slots, originals):
                object.__setattr__(m, a, original)

    return Check(name, group, fn, list(inputs) + [getattr(m, a).data.copy() for m, a in slots])


def layer_check(name, layer, x, train=True):
    return module_check(name, "layer", layer, [x], train)


def checks(rng):
    n = rng.standard_normal
    dropout = nn.Dropout(0.4, rng=np.random.default_rng(1))
    return [
        layer_check("Linear(4, 3)", nn.Linear(4, 3, rng=rng), n((5, 4))),
        layer_check("Linear(3, 2) on (2, 4, 3)", nn.Linear(3, 2, rng=rng), n((2, 4, 3))),
        layer_check("Linear(4, 3) on a 1-D input (4,)", nn.Linear(4, 3, rng=rng), n(4)),
        layer_check("Linear(3, 2), no bias", nn.Linear(3, 2, bias=False, rng=rng), n((5, 3))),
        layer_check("Conv2d(2, 3, 3)", nn.Conv2d(2, 3, 3, rng=rng), n((2, 2, 5, 6))),
        layer_check("Conv2d(1, 2, 3, stride=2, padding=1)", nn.Conv2d(1, 2, 3, stride=2, padding=1, rng=rng),
                    n((2, 1, 7, 6))),
        layer_check("Conv2d(2, 2, (2, 3), stride=(2, 1), no bias)",
                    nn.Conv2d(2, 2, (2, 3), stride=(2, 1), bias=False, rng=rng), n((1, 2, 5, 5))),
        layer_check("Conv2d(2, 3, 2, stride=3, padding=(2, 0))",
                    nn.Conv2d(2, 3, 2, stride=3, padding=(2, 0), rng=rng), n((2, 2, 4, 7))),
        layer_check("MaxPool2d(2)", nn.MaxPool2d(2), distinct(rng, (2, 2, 4, 6))),
        layer_check("MaxPool2d(3, stride=2)", nn.MaxPool2d(3, 2), distinct(rng, (1, 2, 7, 7))),
        layer_check("Conv1d(3, 4, 5, padding=2)", nn.Conv1d(3, 4, 5, padding=2, rng=rng), n((2, 3, 8))),
        layer_check("Conv1d(2, 3, 3, stride=2, dilation=2, no bias)",
                    nn.Conv1d(2, 3, 3, stride=2, dilation=2, bias=False, rng=rng), n((2, 2, 11))),
        layer_check("MaxPool1d(3, stride=2)", nn.MaxPool1d(3, 2), distinct(rng, (2, 3, 9))),
        layer_check("AvgPool1d(2)", nn.AvgPool1d(2), n((2, 3, 7))),
        layer_check("Flatten", nn.Flatten(), n((2, 3, 2, 2))),
        layer_check("ReLU", nn.ReLU(), away_from_zero(rng, (3, 4))),
        layer_check("Sigmoid", nn.Sigmoid(), n((3, 4))),
        layer_check("Tanh", nn.Tanh(), n((3, 4))),
        layer_check("Dropout(0.4) train (fixed mask)", _FixedDropout(dropout), n((4, 5))),
        layer_check("L2Normalize", nn.L2Normalize(), n((4, 3))),
        layer_check("L2Normalize at a zero row", nn.L2Normalize(eps=1e-2), np.r_[n((2, 3)), np.zeros((1, 3))]),
        layer_check("Standardize", nn.Standardize(), n((3, 2, 3, 4))),
        layer_check("Standardize of a constant image", nn.Standardize(eps=1e-2), np.full((2, 1, 2, 3), 0.7)),
        layer_check("BatchNorm1d(3) train", randomised_batchnorm(nn.BatchNorm1d(3), rng), n((6, 3))),
        layer_check("BatchNorm1d(3) eval", randomised_batchnorm(nn.BatchNorm1d(3), rng), n((4, 3)), train=False),
        layer_check("BatchNorm1d(3) train on (N, C, L)", randomised_batchnorm(nn.BatchNorm1d(3), rng), n((2, 3, 4))),
        layer_check("BatchNorm1d(3) eval on (N, C, L)", randomised_batchnorm(nn.BatchNorm1d(3), rng), n((2, 3, 4)),
                    train=False),
        layer_check("BatchNorm2d(2) train", randomised_batchnorm(nn.BatchNorm2d(2), rng), n((3, 2, 3, 2))),
        layer_check("BatchNorm2d(2) eval", randomised_batchnorm(nn.BatchNorm2d(2), rng), n((2, 2, 3, 3)),
                    train=False),
        layer_check("Sequential(Conv2d, BatchNorm2d, Tanh, MaxPool2d, Flatten, Linear)",
                    nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=rng), nn.BatchNorm2d(2), nn.Tanh(),
                                  nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3, rng=rng)), n((3, 1, 4, 4))),
        layer_check("Sequential(Conv1d, Tanh, MaxPool1d, Conv1d, AvgPool1d, Flatten, Linear)",
                    nn.Sequential(nn.Conv1d(2, 3, 3, padding=1, rng=rng), nn.Tanh(), nn.MaxPool1d(2),
                                  nn.Conv1d(3, 2, 2, dilation=2, rng=rng), nn.AvgPool1d(2), nn.Flatten(),
                                  nn.Linear(4, 2, rng=rng)), distinct(rng, (2, 2, 12))),
        # sentences: ids (integers, held constant) and lengths or masks
        layer_check("Embedding(6, 3, padding_id=0)", nn.Embedding(6, 3, rng=rng),
                    np.array([[3, 5, 3, 0], [1, 2, 0, 0]])),
        layer_check("Embedding(5, 4, padding_id=None, channels_first=True)",
                    nn.Embedding(5, 4, padding_id=None, channels_first=True, rng=rng),
                    np.array([[0, 4, 4], [2, 0, 1]])),
        module_check("MaskedMeanPool1d", "layer", nn.MaskedMeanPool1d(), [n((3, 2, 4)), np.array([2, 4, 1])]),
        module_check("MaskedMaxPool1d", "layer", nn.MaskedMaxPool1d(),
                     [distinct(rng, (3, 2, 4)), np.array([3, 1, 4])]),
        module_check("TextConvTower(widths 1, 2, 3, max and mean)", "network",
                     TextConvTower(7, embed_dim=3, channels=2, widths=(1, 2, 3), out_dim=3, rng=rng),
                     [np.array([[2, 6, 3, 1], [5, 5, 0, 0], [4, 0, 0, 0]]), np.array([4, 2, 1])]),
        module_check("DistributionHead(3, hidden=4)", "head", DistributionHead(3, hidden=4, rng=rng),
                     [n((4, 3)), n((4, 3))]),
        module_check("ExpL1Head(scale=2)", "head", ExpL1Head(scale=2.0), [away_from_zero(rng, (3, 4)), n((3, 4))]),
        module_check("TextTwin(TextConvTower, DistributionHead)", "network",
                     TextTwin(TextConvTower(6, embed_dim=3, channels=2, widths=(2,), pooling="max", out_dim=None,
                                            rng=rng), DistributionHead(2, hidden=3, rng=rng)),
                     [np.array([[2, 5, 3], [4, 1, 0]]), np.array([3, 2]), np.array([[1, 1], [3, 0]]),
                      np.array([2, 1])]),
    ]


class _FixedDropout(nn.Module):
    """Dropout whose mask is drawn again from the same seed on every call, so finite differences see one function."""

    def __init__(self, dropout):
        super().__init__()
        self.dropout = dropout

    def forward(self, x):
        self.dropout.rng = np.random.default_rng(7)
        return self.dropout(x)


def randomised_batchnorm(layer, rng):
    """Random gamma, beta and running statistics: gamma = 1, beta = 0 would hide a missing factor."""
    c, dtype = layer.num_features, layer.weight.dtype
    layer.weight.data = (rng.uniform(0.5, 2.0, c) * rng.choice([-1.0, 1.0], c)).astype(dtype)
    layer.bias.data = rng.standard_normal(c).astype(dtype)
    layer.running_mean = rng.standard_normal(c).astype(dtype)
    layer.running_var = rng.uniform(0.5, 2.0, c).astype(dtype)
    return layer
