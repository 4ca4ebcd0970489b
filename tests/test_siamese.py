"""Twin and triplet wrappers share weights for real; heads; the README's contrastive example."""
import numpy as np
import pytest

import tinysiam as ts
from tinysiam import nn
from tinysiam.siamese import KochHead, RelationModule, TripletNetwork, TwinNetwork


def tower(rng):
    return nn.Sequential(nn.Linear(4, 5, rng=rng), nn.Tanh(), nn.Linear(5, 3, rng=rng)).astype(np.float64)


def test_twin_gradient_is_the_sum_of_the_two_branches():
    rng = np.random.default_rng(0)
    net = TwinNetwork(tower(rng))
    x1, x2 = ts.Tensor(rng.standard_normal((6, 4))), ts.Tensor(rng.standard_normal((6, 4)))
    e1, e2 = net(x1, x2)
    ((e1 - e2) ** 2).sum().backward()
    together = {name: p.grad.copy() for name, p in net.named_parameters()}
    # each branch alone, with the other branch's embedding held constant
    per_branch = {name: 0 for name in together}
    for own, other in ((x1, e2), (x2, e1)):
        net.zero_grad()
        ((net.tower(own) - ts.Tensor(other.data)) ** 2).sum().backward()
        for name, p in net.named_parameters():
            per_branch[name] = per_branch[name] + p.grad
    for name in together:
        np.testing.assert_allclose(together[name], per_branch[name], rtol=1e-10, atol=1e-12)
    assert len(list(net.parameters())) == 4  # one tower's parameters, not two


def test_triplet_network_returns_three_embeddings_of_one_tower():
    rng = np.random.default_rng(1)
    t = tower(rng)
    xs = [ts.Tensor(rng.standard_normal((2, 4))) for _ in range(3)]
    for out, x in zip(TripletNetwork(t)(*xs), xs):
        np.testing.assert_allclose(out.numpy(), t(x).numpy())


def test_koch_head_probability_and_relation_score_range():
    rng = np.random.default_rng(2)
    head = KochHead(3, rng=rng)
    h1, h2 = ts.Tensor(rng.standard_normal((4, 3)).astype(np.float32)), ts.Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    expected = 1 / (1 + np.exp(-(np.abs(h1.data - h2.data) @ head.linear.weight.data[0] + head.linear.bias.data[0])))
    np.testing.assert_allclose(head.probability(h1, h2).numpy(), expected, rtol=1e-5)
    score = RelationModule(2, hidden=4, rng=rng)(ts.Tensor(np.ones((3, 2, 4, 4), np.float32)),
                                                 ts.Tensor(np.zeros((3, 2, 4, 4), np.float32)))
    assert score.shape == (3,) and ((score.numpy() >= 0) & (score.numpy() <= 1)).all()


def test_wrappers_reject_mismatched_branches():
    net = TwinNetwork(tower(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="one shape"):
        net(ts.Tensor(np.ones((2, 4))), ts.Tensor(np.ones((3, 4))))


def test_readme_example_contrastive_training_pulls_same_pairs_together():
    """The README's example: distances of same-class pairs shrink, different-class pairs grow."""
    from tinysiam import optim
    from tinysiam.distances import l2_distance
    from tinysiam.losses import contrastive_loss
    from tinysiam.mining import PairSampler

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    centres = rng.normal(0, 1, (4, 10))
    points = (0.2 * (centres[labels] + rng.normal(0, 1.0, (400, 10)))).astype(np.float32)
    net = TwinNetwork(nn.Sequential(nn.Linear(10, 16, rng=rng), nn.ReLU(), nn.Linear(16, 2, rng=rng)))
    opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    pairs = PairSampler(labels, seed=0)
    test_left, test_right, test_same = pairs.sample(400)

    def mean_distances():
        with ts.no_grad():
            d = l2_distance(*net(ts.Tensor(points[test_left]), ts.Tensor(points[test_right]))).numpy()
        return d[test_same == 1].mean(), d[test_same == 0].mean()

    same_before, different_before = mean_distances()
    for _ in range(200):
        left, right, same = pairs.sample(64)
        loss = contrastive_loss(l2_distance(*net(ts.Tensor(points[left]), ts.Tensor(points[right]))), same, margin=1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    same_after, different_after = mean_distances()
    assert same_after < 0.7 * same_before
    assert different_after > 1.3 * different_before
