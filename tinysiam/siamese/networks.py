"""Twin and triplet networks with literally shared weights, and the pair-scoring heads.

The tower is ONE module: the twin stacks its two inputs along the batch axis
and runs the tower once, so both branches use the very same parameters, and
backprop adds the gradients of the two branches in each parameter's ``.grad``.
One pass also means a BatchNorm layer in the tower normalises over all 2N (or
3N) inputs together, as a PyTorch model that concatenates the branches does.
"""
from .. import nn
from ..engine import ops
from ..engine.checks import check_tensor
from .distances import check_embeddings


def _check_batch(name, *inputs):
    for i, x in enumerate(inputs, start=1):
        check_tensor(name, f"x{i}", x)
    shapes = [x.shape for x in inputs]
    if len(set(shapes)) != 1:
        raise ValueError(f"{name}: the branches' inputs must have one shape, got {shapes}")
    if not shapes[0] or shapes[0][0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {shapes[0]}")


class TwinNetwork(nn.Module):
    """``forward(x1, x2)``: the two embeddings, or ``head(e1, e2)`` when a head is given.

    ``x1`` and ``x2`` are batches of one shape; row i of each forms pair i.
    """

    def __init__(self, tower, head=None):
        super().__init__()
        self.tower, self.head = tower, head

    def embed_pair(self, x1, x2):
        """The two branches' embeddings, from one tower pass over both batches."""
        _check_batch("TwinNetwork", x1, x2)
        n = x1.shape[0]
        both = self.tower(ops.concatenate([x1, x2]))  # one pass over 2N inputs
        return both[:n], both[n:]

    def forward(self, x1, x2):
        e1, e2 = self.embed_pair(x1, x2)
        return (e1, e2) if self.head is None else self.head(e1, e2)


class TripletNetwork(nn.Module):
    """``forward(anchor, positive, negative)`` -> three embeddings from one tower pass."""

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def forward(self, anchor, positive, negative):
        _check_batch("TripletNetwork", anchor, positive, negative)
        n = anchor.shape[0]
        all_three = self.tower(ops.concatenate([anchor, positive, negative]))
        return all_three[:n], all_three[n:2 * n], all_three[2 * n:]


class KochHead(nn.Module):
    """Koch et al. 2015: p = sigmoid(w . |h1 - h2| + b). Returns the logit w . |h1 - h2| + b.

    Train it with ``bce_with_logits`` (stable); ``probability(h1, h2)`` gives p.
    """

    def __init__(self, features, rng=None):
        super().__init__()
        self.features = features
        self.linear = nn.Linear(features, 1, init="koch", rng=rng)

    def forward(self, h1, h2):
        check_embeddings("KochHead", h1=h1, h2=h2)
        return self.linear((h1 - h2).abs()).reshape(h1.shape[0])

    def probability(self, h1, h2):
        """p = sigmoid(logit): the probability that the pair is of one class."""
        return self.forward(h1, h2).sigmoid()

    def extra_repr(self):
        return f"features={self.features}"


class RelationModule(nn.Module):
    """Sung et al. 2018: concatenate two (N, C, H, W) feature maps along channels, score in [0, 1].

    conv 3x3 (2C -> hidden) - batch norm - relu - global max over H, W - linear(hidden -> 8) - relu
    - linear(8 -> 1) - sigmoid. Train with ``mse_loss`` against 1 (same) / 0 (different).
    """

    def __init__(self, in_channels, hidden=64, rng=None):
        super().__init__()
        self.conv = nn.Conv2d(2 * in_channels, hidden, 3, padding=1, rng=rng)
        self.norm = nn.BatchNorm2d(hidden)
        self.fc1, self.fc2 = nn.Linear(hidden, 8, rng=rng), nn.Linear(8, 1, init="glorot", rng=rng)

    def forward(self, f1, f2):
        _check_batch("RelationModule", f1, f2)
        h = self.norm(self.conv(ops.concatenate([f1, f2], axis=1))).relu()
        h = h.max(axis=(2, 3))
        return self.fc2(self.fc1(h).relu()).sigmoid().reshape(f1.shape[0])
