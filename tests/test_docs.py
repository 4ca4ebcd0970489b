"""The worked examples of docs/derivations.md are the library's own numbers."""
import re
from pathlib import Path

import numpy as np
import pytest

import tinysiam as ts
from tinysiam.engine import conv
from tinysiam.nn.batchnorm import BatchNormOp
from tinysiam.siamese import distances, losses

DOC = (Path(__file__).resolve().parents[1] / "docs" / "derivations.md").read_text()


def run(fn, *arrays, upstream=None):
    """fn's value and its inputs' gradients, for the upstream gradient ``upstream`` (default: all ones)."""
    tensors = [ts.Tensor(np.array(a, dtype=float), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    out.backward(np.ones(out.shape) if upstream is None else np.array(upstream, dtype=float))
    return out.numpy(), [t.grad for t in tensors]


def in_doc(*numbers):
    """Each number is written in the document as a number of its own (not inside a longer one: 1 is not in 12 or -1)."""
    for number in numbers:
        text = f"{number:.8f}".rstrip("0").rstrip(".")
        assert re.search(rf"(?<![\d.-]){re.escape(text)}(?![\d])", DOC), f"{text} is not in docs/derivations.md"


def test_a_number_is_found_only_as_a_whole(monkeypatch):
    monkeypatch.setitem(globals(), "DOC", "x = 12, y = -1, z = 0.25")
    in_doc(12, -1, 0.25)
    for missing in (1, 2, 0.2, 5):
        with pytest.raises(AssertionError):
            in_doc(missing)


pair = np.array([1, 0])


@pytest.mark.parametrize("fn, arrays, expected", [
    (lambda d: losses.contrastive_loss(d, pair, 1.0, reduction="none"), [[0.6, 0.6]], [0.18, 0.08, 0.6, -0.4]),
    (lambda d: losses.contrastive_linear_loss(d, pair, 1.0, reduction="none"), [[0.6, 0.6]], [0.6, 0.4, 1, -1]),
    (lambda e: losses.chopra_energy_loss(e, pair, 4.0, reduction="none"), [[1.0, 1.0]],
     [0.5, 4.00258956, 1, -2.77179327]),
    (lambda z: losses.bce_with_logits(z, pair, reduction="none"), [[2.0, 2.0]],
     [0.12692801, 2.12692801, -0.11920292, 0.88079708]),
    (lambda a, p, n: losses.triplet_loss(a, p, n, 1.0), [[[0, 0]], [[1, 0]], [[0, 1.5]]], [0.5, -1, 1, 1, 0, 0, -1]),
    (lambda r, t: losses.mse_loss(r, t), [[[0.8]], [[1.0]]], [0.04, -0.4, 0.4]),
    (lambda a, b: losses.nt_xent_loss(a, b, 1.0), [[[1, 0], [0, 1]], [[1, 0], [0, 1]]], [0.55144471]),
    (distances.l2_distance, [[[3, 4]], [[0, 0]]], [5, 0.6, 0.8, -0.6, -0.8]),
    (distances.l1_distance, [[[3, -4]], [[0, 0]]], [7, 1, -1, -1, 1]),
    (distances.cosine_distance, [[[1, 0]], [[1, 1]]], [0.29289322, 0, -0.70710678, -0.35355339, 0.35355339]),
])
def test_worked_examples(fn, arrays, expected):
    value, grads = run(fn, *arrays)
    computed = np.concatenate([np.ravel(value)] + [g.ravel() for g in grads])
    np.testing.assert_allclose(computed[:len(expected)], expected, atol=5e-9)
    in_doc(*expected)


image = np.arange(9.0).reshape(1, 1, 3, 3)


@pytest.mark.parametrize("fn, arrays, upstream, expected", [
    (lambda a, b: a + b, [np.zeros((3, 2)), [1, 2]], [[1, 2], [3, 4], [5, 6]], {1: [9, 12]}),
    (lambda a, b: a @ b, [[[1, 2]], [[3], [4]]], None, {"value": [11], 0: [3, 4], 1: [1, 2]}),
    (lambda x: x.max(), [[1, 3, 3]], None, {"value": [3], 0: [0, 1, 0]}),
    (lambda x, w: conv.conv2d(x, w), [image, [[[[1, 0], [0, -1]]]]], None,
     {"value": [-4] * 4, 0: [1, 1, 0, 1, 0, -1, 0, -1, -1], 1: [8, 12, 20, 24]}),
    (lambda x: conv.max_pool2d(x, 2), [[[[[0, 5], [5, 5]]]]], None, {"value": [5], 0: [0, 1, 0, 0]}),
    (lambda x, gamma, beta: BatchNormOp(0.0)(x, gamma, beta), [[[1], [2], [3]], [1], [0]], [[1], [0], [0]],
     {"value": [-1.22474487, 0, 1.22474487], 0: [0.20412415, -0.40824829, 0.20412415], 1: [-1.22474487]}),
])
def test_engine_worked_examples(fn, arrays, upstream, expected):
    value, grads = run(fn, *arrays, upstream=upstream)
    for which, numbers in expected.items():
        computed = value if which == "value" else grads[which]
        np.testing.assert_allclose(np.ravel(computed), numbers, atol=5e-9)
        in_doc(*numbers)


def test_embedding_masked_pooling_and_kl_worked_examples():
    from tinysiam.engine.embedding import masked_max, masked_mean
    from tinysiam.siamese.losses import kl_divergence_loss, score_distribution

    x = [[[1, 4, 2, 9]]]
    value, (grad,) = run(lambda t: masked_mean(t, np.array([3])), x)
    np.testing.assert_allclose([value.item(), *grad.ravel()], [7 / 3, 1 / 3, 1 / 3, 1 / 3, 0], atol=5e-9)
    in_doc(2.33333333, 0.33333333)
    value, (grad,) = run(lambda t: masked_max(t, np.array([3])), x)
    assert value.item() == 4 and grad.ravel().tolist() == [0, 1, 0, 0]
    target = score_distribution([3.6])
    np.testing.assert_allclose(target, [[0, 0, 0.4, 0.6, 0]], atol=1e-12)
    value, (grad,) = run(lambda z: kl_divergence_loss(z, target), [[0, 0, 0, 0, 0]])
    np.testing.assert_allclose([value.item(), *grad.ravel()], [0.93642625, 0.2, 0.2, -0.2, -0.4, 0.2], atol=5e-9)
    in_doc(0.93642625)
