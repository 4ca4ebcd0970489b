"""The backward pass: accumulation, graph freeing, deep graphs, no_grad, dtypes, devices."""
import numpy as np
import pytest

import tinysiam as ts
from tinysiam import nn, ops
from tinysiam.conv import conv2d, max_pool2d


def test_tensor_used_twice_gets_the_sum_of_both_gradients():
    x = ts.Tensor(np.array([1.5, -2.0]), requires_grad=True)
    (x * x + 3.0 * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)


def test_shared_weight_gets_the_sum_of_branch_gradients():
    rng = np.random.default_rng(0)
    layer = nn.Linear(3, 2, rng=rng)
    a, b = ts.Tensor(rng.standard_normal((4, 3)).astype(np.float32)), ts.Tensor(rng.standard_normal((4, 3)).astype(np.float32))
    grads = []
    for branch in (a, b):
        layer.zero_grad()
        layer(branch).tanh().sum().backward()
        grads.append(layer.weight.grad.copy())
    layer.zero_grad()
    (layer(a).tanh().sum() + layer(b).tanh().sum()).backward()
    np.testing.assert_allclose(layer.weight.grad, grads[0] + grads[1], rtol=1e-6)


def test_backward_needs_a_gradient_for_non_scalars():
    x = ts.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(3,\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_second_backward_through_a_freed_graph_raises():
    x = ts.Tensor(np.array([2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = ts.Tensor(np.array([2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [8.0])  # accumulated: 4 + 4


def test_deep_graph_has_no_recursion_limit():
    x = ts.Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001**10_000], rtol=1e-9)


def test_no_grad_records_no_graph():
    x = ts.Tensor(np.ones(2), requires_grad=True)
    with ts.no_grad():
        y = x * 2.0
    assert not y.requires_grad and y.creator is None
    assert ts.is_grad_enabled()


def test_backward_on_a_constant_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ts.Tensor(np.ones(1)).sum().backward()


def test_grad_arrays_are_independent_copies():
    a = ts.Tensor(np.ones(2), requires_grad=True)
    b = ts.Tensor(np.ones(2), requires_grad=True)
    (a + b).sum().backward()  # Add hands the same array to both inputs
    a.grad *= 5
    np.testing.assert_array_equal(b.grad, [1, 1])


FLOAT32_CASES = {
    "arithmetic": lambda x: ((x + 1.0) * 2.0 - x / 3.0) ** 2,
    "reductions": lambda x: x.sum(axis=1) + x.mean(axis=1) + x.max(axis=1),
    "elementwise": lambda x: x.exp().log().sqrt().abs() + x.sigmoid() + x.tanh() + x.relu() + x.clip(0.1, 0.9),
    "shape": lambda x: ops.concatenate([x.reshape(2, -1), x.T.reshape(2, -1)], axis=1)[0, np.array([0, 1])],
    "matmul": lambda x: x @ x.T,
    "conv_pool": lambda x: max_pool2d(conv2d(x.reshape(1, 1, 2, 6), ts.Tensor(np.ones((2, 1, 1, 3), np.float32))), (1, 2)),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_CASES))
def test_float32_stays_float32(name):
    x = ts.Tensor(np.random.default_rng(0).uniform(0.2, 1.0, (2, 6)).astype(np.float32), requires_grad=True)
    y = FLOAT32_CASES[name](x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_python_numbers_become_float32():
    assert ts.Tensor([1.0, 2.0]).dtype == np.float32
    assert (ts.Tensor(np.ones(2, np.float32)) * 2.5).dtype == np.float32


@pytest.mark.skipif(not ts.gpu_available(), reason="CuPy with a CUDA device is not available")
def test_mixing_devices_raises():
    with pytest.raises(RuntimeError, match="different devices"):
        ts.Tensor(np.ones(2)) + ts.Tensor(np.ones(2), device="gpu")


def test_unknown_device_raises():
    with pytest.raises(ValueError, match="'tpu'"):
        ts.Tensor(np.ones(2), device="tpu")
