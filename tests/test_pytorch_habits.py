"""What a PyTorch user types either works or says what to write instead."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import ops
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.engine.pytorch_habits import PYTORCH_SPELLINGS
from tinysiam.siamese import losses


def tensor():
    return ts.Tensor(np.arange(6.0).reshape(2, 3) - 2.5, requires_grad=True)


def test_what_works_as_in_pytorch():
    t = tensor()
    assert t.shape == (2, 3) and t.ndim == 2 and len(t) == 2 and t.dtype == np.float64
    np.testing.assert_array_equal(t.numpy(), np.arange(6.0).reshape(2, 3) - 2.5)
    assert t[1, 2].item() == 2.5 and float(t[1, 2]) == 2.5 and isinstance(float(t[0, 0]), float)
    np.testing.assert_array_equal(abs(t).numpy(), np.abs(t.numpy()))
    detached = t.detach()
    assert not detached.requires_grad and detached.creator is None
    np.testing.assert_array_equal(detached.numpy(), t.numpy())
    np.testing.assert_array_equal(t.sum(1).numpy(), [-4.5, 4.5])  # the axis by position, as in t.sum(1)


def test_size_is_numpys_element_count_and_calling_it_says_what_to_write():
    t = tensor()
    assert t.size == 6 and t.size * 2 == 12 and isinstance(t.size, int)
    with pytest.raises(TypeError, match=r"write t\.shape, for t\.size\(d\) write t\.shape\[d\]"):
        t.size()
    with pytest.raises(TypeError, match=r"write t\.shape"):
        t.size(0)


def test_comparisons_give_boolean_tensors_outside_the_graph():
    t, u = tensor(), ts.Tensor(np.zeros((2, 3)))
    for got, expected in [(t > 0, t.numpy() > 0), (t >= 0.5, t.numpy() >= 0.5), (t < u, t.numpy() < 0),
                          (t <= -0.5, t.numpy() <= -0.5), (t == 0.5, t.numpy() == 0.5), (t != u, t.numpy() != 0),
                          (0 < t, t.numpy() > 0)]:
        assert isinstance(got, ts.Tensor) and got.dtype == bool and not got.requires_grad and got.creator is None
        np.testing.assert_array_equal(got.numpy(), expected)
    assert {t: "weights"}[t] == "weights"  # == compares values; hashing stays by identity


def test_truth_value_of_one_element_and_refusal_for_more():
    t = tensor()
    assert t[1, 2] > 0 and not (t[0, 0] > 0)
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2, 3\) is ambiguous.*any\(\)"):
        bool(t > 0)


@pytest.mark.parametrize("call, message", [
    (lambda t: t.sum(dim=1), r"sum\(\) takes NumPy's argument names: write axis= instead of dim="),
    (lambda t: t.mean(axis=0, keepdim=True), r"mean\(\).*write keepdims= instead of keepdim="),
    (lambda t: t.max(dim=1, keepdim=True), r"max\(\).*axis= instead of dim= and keepdims= instead of keepdim="),
    (lambda t: ops.concatenate([t, t], dim=1), r"concatenate\(\).*axis= instead of dim="),
    (lambda t: ops.stack([t, t], dim=0), r"stack\(\).*axis= instead of dim="),
])
def test_pytorch_argument_names_say_what_to_write(call, message):
    with pytest.raises(TypeError, match=message):
        call(tensor())


@pytest.mark.parametrize("name, instead", sorted(PYTORCH_SPELLINGS.items()))
def test_pytorch_method_spellings_say_what_to_write(name, instead):
    with pytest.raises(AttributeError, match=re.escape(f"no attribute '{name}'; tinysiam spells it the NumPy way: "
                                                       f"{instead}")):
        getattr(tensor(), name)


def test_an_unknown_attribute_is_a_plain_attribute_error():
    with pytest.raises(AttributeError, match=r"^'Tensor' object has no attribute 'no_such_thing'$"):
        tensor().no_such_thing
    assert not hasattr(tensor(), "view") and hasattr(tensor(), "reshape")


def test_transpose_takes_numpys_permutation_and_explains_pytorchs_swap():
    t = ts.Tensor(np.zeros((2, 3, 4)))
    assert t.transpose(1, 0, 2).shape == (3, 2, 4) and tensor().transpose(1, 0).shape == (3, 2)
    with pytest.raises(ValueError, match=r"transpose\(0, 2\): give a permutation of all 3 axes.*"
                                         r"to swap axes 0 and 2 as PyTorch does, write transpose\(2, 1, 0\)"):
        t.transpose(0, 2)
    with pytest.raises(ValueError, match=r"transpose\(0,\): give a permutation of all 3 axes of shape \(2, 3, 4\)"):
        t.transpose(0)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=4).map(tuple), data=st.data(), seed=st.integers(0, 99))
def test_squeeze_drops_length_one_axes_and_passes_gradcheck(shape, data, seed):
    ones = [a for a, n in enumerate(shape) if n == 1]
    axis = data.draw(st.none() | st.lists(st.sampled_from(ones), unique=True).map(tuple) if ones else st.none())
    x = np.random.default_rng(seed).standard_normal(shape)
    dropped = ones if axis is None else axis
    assert ts.Tensor(x).squeeze(axis).shape == tuple(n for a, n in enumerate(shape) if a not in dropped)
    gradcheck(lambda t: t.squeeze(axis), x)


def test_squeeze_of_an_axis_longer_than_one_is_an_error():
    with pytest.raises(ValueError, match=r"squeeze: axis 1 of a tensor of shape \(1, 3\) does not have length 1"):
        ts.Tensor(np.zeros((1, 3))).squeeze(1)


def test_mse_sum_sums_per_sample_means_as_its_docstring_says():
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))  # N = 4 samples of K = 3 values
    squared = (p - t) ** 2
    assert losses.mse_loss(ts.Tensor(p), t, "sum").item() == pytest.approx(squared.sum() / 3)  # PyTorch: squared.sum()
    assert losses.mse_loss(ts.Tensor(p), t, "mean").item() == pytest.approx(squared.mean())  # as PyTorch
