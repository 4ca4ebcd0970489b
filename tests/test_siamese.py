"""Twin and triplet wrappers share weights for real; heads; the README's contrastive example."""
import numpy as np
import pytest

import tinysiam as ts
from tinysiam import nn
from tinysiam.siamese import KochHead, RelationModule, TripletNetwork, TwinNetwork
from tinysiam.siamese.losses import bce_with_logits


def tower(rng):
    return nn.Sequential(nn.Linear(4, 5, rng=rng), nn.Tanh(), nn.Linear(5, 3, rng=rng)).astype(np.float64)


class CountingTower(nn.Module):
    """A tower that records the batch size of every call."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x):
        self.calls.append(x.shape[0])
        return self.inner(x)


def branch_gradients(net, loss_of_embeddings, inputs):
    """Parameter gradients of the loss, each branch run alone with the other embeddings held constant."""
    with ts.no_grad():
        embeddings = [net.tower(x) for x in inputs]
    total = {name: 0 for name, _ in net.named_parameters()}
    for i, x in enumerate(inputs):
        net.zero_grad()
        own = [net.tower(x) if j == i else e for j, e in enumerate(embeddings)]
        loss_of_embeddings(*own).backward()
        for name, p in net.named_parameters():
            total[name] = total[name] + p.grad
    return total


@pytest.mark.parametrize("wrapper, n_inputs", [(TwinNetwork, 2), (TripletNetwork, 3)])
def test_shared_weights_get_the_sum_of_the_branch_gradients(wrapper, n_inputs):
    rng = np.random.default_rng(0)
    net = wrapper(tower(rng))
    inputs = [ts.Tensor(rng.standard_normal((6, 4))) for _ in range(n_inputs)]

    def loss_of(*e):  # a loss that couples the branches, so each branch's gradient depends on the others
        return sum(((e[0] - other) ** 2).sum() for other in e[1:]) + (e[-1] * e[0]).sum()

    net.zero_grad()
    loss_of(*net(*inputs)).backward()
    together = {name: p.grad.copy() for name, p in net.named_parameters()}
    separately = branch_gradients(net, loss_of, inputs)
    assert together.keys() == separately.keys() and len(together) == 4  # one tower's parameters, not n copies
    for name in together:
        np.testing.assert_allclose(together[name], separately[name], rtol=1e-10, atol=1e-12)
        assert np.abs(together[name]).max() > 1e-3  # a real gradient, not two zeros


@pytest.mark.parametrize("wrapper, n_inputs", [(TwinNetwork, 2), (TripletNetwork, 3)])
def test_the_tower_runs_once_on_the_stacked_batch(wrapper, n_inputs):
    rng = np.random.default_rng(1)
    counting = CountingTower(tower(rng))
    inputs = [ts.Tensor(rng.standard_normal((5, 4))) for _ in range(n_inputs)]
    outputs = wrapper(counting)(*inputs)
    assert counting.calls == [5 * n_inputs]
    for out, x in zip(outputs, inputs):  # each output is its own input's embedding
        np.testing.assert_allclose(out.numpy(), counting.inner(x).numpy(), rtol=1e-12)


def test_twin_with_a_koch_head_returns_logits_for_bce():
    rng = np.random.default_rng(2)
    head = KochHead(3, rng=rng).astype(np.float64)
    net = TwinNetwork(tower(rng), head)
    x1, x2 = ts.Tensor(rng.standard_normal((4, 4))), ts.Tensor(rng.standard_normal((4, 4)))
    logits = net(x1, x2)
    e1, e2 = TwinNetwork(net.tower)(x1, x2)
    w, b = head.linear.weight.data[0], head.linear.bias.data[0]
    expected = np.abs(e1.numpy() - e2.numpy()) @ w + b
    assert logits.shape == (4,)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(head.probability(e1, e2).numpy(), 1 / (1 + np.exp(-expected)), rtol=1e-12)
    bce_with_logits(logits, np.array([1, 0, 1, 0])).backward()
    assert all(p.grad is not None for p in net.parameters())  # the loss reaches the tower and the head


def test_relation_module_scores_pairs_of_feature_maps_in_0_1():
    rng = np.random.default_rng(3)
    module = RelationModule(2, hidden=4, rng=rng).astype(np.float64)
    f1 = ts.Tensor(rng.standard_normal((3, 2, 4, 4)), requires_grad=True)
    f2 = ts.Tensor(rng.standard_normal((3, 2, 4, 4)), requires_grad=True)
    score = module(f1, f2)
    assert score.shape == (3,) and ((score.numpy() > 0) & (score.numpy() < 1)).all()
    score.sum().backward()
    assert np.abs(f1.grad).max() > 0 and np.abs(f2.grad).max() > 0
    assert module.conv.in_channels == 4  # the two maps are stacked along channels


@pytest.mark.parametrize("call, message", [
    (lambda net: net(ts.Tensor(np.ones((2, 4))), ts.Tensor(np.ones((3, 4)))), r"one shape, got \[\(2, 4\), \(3, 4\)\]"),
    (lambda net: net(ts.Tensor(np.ones((0, 4))), ts.Tensor(np.ones((0, 4)))), "non-empty batch"),
    (lambda net: KochHead(3)(ts.Tensor(np.ones((2, 3))), ts.Tensor(np.ones((2, 4)))), r"h2 has shape \(2, 4\)"),
    (lambda net: RelationModule(2, 4)(ts.Tensor(np.ones((2, 2, 3, 3))), ts.Tensor(np.ones((1, 2, 3, 3)))),
     "one shape"),
])
def test_wrappers_and_heads_reject_mismatched_branches(call, message):
    net = TwinNetwork(tower(np.random.default_rng(0)))
    with pytest.raises(ValueError, match=message):
        call(net)


def test_readme_example_contrastive_training_pulls_same_pairs_together():
    """The README's example, line for line: same-class distances shrink, different-class distances grow."""
    from tinysiam import optim
    from tinysiam.siamese.distances import l2_distance
    from tinysiam.siamese.losses import contrastive_loss
    from tinysiam.siamese.mining import PairSampler

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)                                   # 4 classes
    points = (0.2 * (rng.normal(0, 1, (4, 10))[labels] + rng.normal(0, 1, (400, 10)))).astype(np.float32)
    net = TwinNetwork(nn.Sequential(nn.Linear(10, 16, rng=rng), nn.ReLU(), nn.Linear(16, 2, rng=rng)))
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    pairs = PairSampler(labels, seed=0)                                 # half same-class, half different

    test_left, test_right, test_same = PairSampler(labels, seed=1).sample(400)

    def mean_distances():
        with ts.no_grad():
            d = l2_distance(*net(ts.Tensor(points[test_left]), ts.Tensor(points[test_right]))).numpy()
        return d[test_same == 1].mean(), d[test_same == 0].mean()

    same_before, different_before = mean_distances()
    for step in range(200):
        left, right, same = pairs.sample(64)                            # same=1: the pair shares a class
        e1, e2 = net(ts.Tensor(points[left]), ts.Tensor(points[right]))  # one tower, shared weights
        loss = contrastive_loss(l2_distance(e1, e2), same, margin=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    same_after, different_after = mean_distances()
    assert same_after < 0.7 * same_before, (same_before, same_after)
    assert different_after > 1.3 * different_before, (different_before, different_after)
    assert different_after > 2 * same_after  # and the two kinds of pair end up clearly apart
