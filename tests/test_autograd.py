"""The backward pass: accumulation, graph freeing, deep graphs, no_grad, dtypes, devices."""
import numpy as np
import pytest
from conftest import on

import tinysiam as ts
from tinysiam import nn, ops
from tinysiam.engine.backend import to_numpy
from tinysiam.engine.conv import conv2d, max_pool2d


def test_tensor_used_twice_gets_the_sum_of_both_gradients():
    x = ts.Tensor(np.array([1.5, -2.0]), requires_grad=True)
    (x * x + 3.0 * x).sum().backward()  # d(x^2 + 3x)/dx = 2x + 3
    np.testing.assert_allclose(x.grad, 2 * x.data + 3)


def test_shared_weight_gets_the_sum_of_branch_gradients():
    rng = np.random.default_rng(0)
    layer = nn.Linear(3, 2, rng=rng)
    a, b = (ts.Tensor(rng.standard_normal((4, 3)).astype(np.float32)) for _ in range(2))
    grads = []
    for branch in (a, b):
        layer.zero_grad()
        layer(branch).tanh().sum().backward()
        grads.append(layer.weight.grad.copy())
    layer.zero_grad()
    (layer(a).tanh().sum() + layer(b).tanh().sum()).backward()
    np.testing.assert_allclose(layer.weight.grad, grads[0] + grads[1], rtol=1e-6)
    assert not np.allclose(grads[0], grads[1])  # two different branches, so the sum is a real test


def test_gradients_accumulate_across_backward_calls():
    x = ts.Tensor(np.array([2.0]), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0 + 4.0])


def test_backward_needs_a_gradient_for_non_scalars():
    x = ts.Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"needs a scalar.*shape \(3,\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(x.grad, [2, 4, 6])
    with pytest.raises(ValueError, match=r"grad has shape \(2,\), tensor has shape \(3,\)"):
        (x * 2.0).backward(np.ones(2))


def test_backward_on_a_constant_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ts.Tensor(np.ones(1)).sum().backward()


def test_second_backward_through_a_freed_graph_raises():
    x = ts.Tensor(np.array([2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="a second time.*retain_graph=True"):
        y.backward()


def test_second_backward_through_a_shared_part_of_a_freed_graph_raises():
    x = ts.Tensor(np.array([2.0]), requires_grad=True)
    h = x * x
    first, second = h.sum(), (h * 3).sum()
    first.backward()
    with pytest.raises(RuntimeError, match="a second time"):
        second.backward()


def test_a_loss_held_after_backward_keeps_no_activation_alive():
    import weakref

    x = ts.Tensor(np.ones((3, 4)), requires_grad=True)
    hidden = (x * 2).relu()
    loss = hidden.sum()
    alive = weakref.ref(hidden)
    del hidden
    assert alive() is not None  # the graph holds it until backward
    loss.backward()
    assert alive() is None  # freed although the loss is still referenced
    np.testing.assert_array_equal(x.grad, np.full((3, 4), 2.0))


def test_backward_frees_each_activation_once_its_users_are_done(monkeypatch):
    import weakref

    from tinysiam.engine import ops

    x = ts.Tensor(np.ones((3, 4)), requires_grad=True)
    hidden = (x * 2).relu()
    loss = hidden.sum()
    alive, seen = weakref.ref(hidden), []
    del hidden
    mul_backward = ops.Mul.backward
    monkeypatch.setattr(ops.Mul, "backward", lambda self, g: seen.append(alive()) or mul_backward(self, g))
    loss.backward()  # relu's output is used by the sum only: freed before the first op's backward runs
    assert seen == [None]


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
        assert not ts.is_grad_enabled()
        y = (x * 2.0).exp()
    assert not y.requires_grad and y.creator is None
    assert ts.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_no_grad_is_restored_after_an_error():
    with pytest.raises(KeyError), ts.no_grad():
        raise KeyError("boom")
    assert ts.is_grad_enabled()


def test_grad_arrays_are_independent_copies():
    a = ts.Tensor(np.ones(2), requires_grad=True)
    b = ts.Tensor(np.ones(2), requires_grad=True)
    (a + b).sum().backward()  # Add hands the same array to both inputs
    a.grad *= 5
    np.testing.assert_array_equal(b.grad, [1, 1])
    upstream = np.ones(2)
    c = ts.Tensor(np.ones(2), requires_grad=True)
    c.backward(upstream)  # a leaf's own backward: its grad must not be the caller's array
    c.grad += 1
    np.testing.assert_array_equal(upstream, [1, 1])


def test_an_input_that_gets_no_gradient_keeps_grad_none():
    class FirstOnly(ts.Function):
        """Depends on ``a`` only; says so by returning None for ``b``."""

        def forward(self, a, b):
            return 2 * a

        def backward(self, g):  # d(2a)/da = 2; b takes no part
            return 2 * g, None

    a = ts.Tensor(np.ones(2), requires_grad=True)
    b = ts.Tensor(np.ones(2), requires_grad=True)
    (FirstOnly()(a, b * 3.0) + a).sum().backward()  # b's path ends at FirstOnly, through a Mul
    np.testing.assert_array_equal(a.grad, [3, 3])
    assert b.grad is None


# ----- dtypes: float32 in, float32 out, float32 gradients ----------------------------------------------------
FLOAT32_OPS = {  # name: (function, input shapes)
    "add": (ops.add, [(2, 3), (3,)]),
    "sub": (ops.sub, [(2, 3), (2, 1)]),
    "mul": (ops.mul, [(2, 3), (2, 3)]),
    "div": (ops.div, [(2, 3), (3,)]),
    "python numbers": (lambda x: (2.0 - x) * 1.5 / 3 + 1 - 0.5 / x, [(2, 3)]),
    "neg": (lambda x: -x, [(2, 3)]),
    "pow 2": (lambda x: x**2, [(2, 3)]),
    "pow 0.5": (lambda x: x**0.5, [(2, 3)]),
    "matmul": (ops.matmul, [(2, 3), (3, 4)]),
    "matmul batched": (ops.matmul, [(2, 2, 3), (3, 4)]),
    "sum": (lambda x: x.sum(axis=1), [(2, 3)]),
    "mean": (lambda x: x.mean(axis=0, keepdims=True), [(2, 3)]),
    "max": (lambda x: x.max(axis=1), [(2, 3)]),
    "reshape": (lambda x: x.reshape(3, 2), [(2, 3)]),
    "transpose": (lambda x: x.T, [(2, 3)]),
    "getitem slice": (lambda x: x[:, 1:], [(2, 3)]),
    "getitem array": (lambda x: x[np.array([1, 1, 0])], [(2, 3)]),
    "concatenate": (lambda a, b: ops.concatenate([a, b], axis=1), [(2, 3), (2, 1)]),
    "stack": (lambda a, b: ops.stack([a, b]), [(2, 3), (2, 3)]),
    "astype round trip": (lambda x: x.astype(np.float64).astype(np.float32), [(2, 3)]),
    "exp": (ops.exp, [(2, 3)]),
    "log": (ops.log, [(2, 3)]),
    "sqrt": (ops.sqrt, [(2, 3)]),
    "abs": (ops.abs, [(2, 3)]),
    "relu": (ops.relu, [(2, 3)]),
    "sigmoid": (ops.sigmoid, [(2, 3)]),
    "tanh": (ops.tanh, [(2, 3)]),
    "clip": (lambda x: x.clip(0.3, 0.8), [(2, 3)]),
    "maximum": (lambda x: x.maximum(0.5), [(2, 3)]),
    "conv2d": (lambda x, w, b: conv2d(x, w, b, padding=1), [(1, 2, 4, 4), (3, 2, 3, 3), (3,)]),
    "max_pool2d": (lambda x: max_pool2d(x, 2), [(1, 2, 4, 4)]),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_OPS))
def test_float32_stays_float32(device, name):
    fn, shapes = FLOAT32_OPS[name]
    rng = np.random.default_rng(0)
    arrays = on(device, *[rng.uniform(0.2, 1.0, s).astype(np.float32) for s in shapes])  # positive: log, sqrt
    inputs = [ts.Tensor(a, requires_grad=True) for a in arrays]
    y = fn(*inputs)
    assert y.dtype == np.float32
    y.sum().backward()
    assert [x.grad.dtype for x in inputs] == [np.float32] * len(inputs)


def test_astype_sends_the_gradient_back_in_the_input_dtype():
    x = ts.Tensor(np.ones(3, np.float32), requires_grad=True)
    (x.astype(np.float64) * 2.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


def test_python_numbers_become_float32():
    assert ts.Tensor([1.0, 2.0]).dtype == np.float32
    assert ts.Tensor(3.0).dtype == np.float32
    assert ts.Tensor(np.ones(2)).dtype == np.float64  # arrays keep their dtype


# ----- devices --------------------------------------------------------------------------------------------
@pytest.mark.skipif(not ts.gpu_available(), reason="CuPy with a CUDA device is not available")
def test_mixing_devices_raises():
    cpu, gpu = ts.Tensor(np.ones(2)), ts.Tensor(np.ones(2), device="gpu")
    with pytest.raises(RuntimeError, match="different devices.*on cpu.*on gpu"):
        cpu + gpu
    with pytest.raises(RuntimeError, match="different devices"):
        ops.concatenate([gpu, cpu])


def test_gradients_live_on_the_device_of_their_tensor(device):
    x = ts.Tensor(np.arange(4.0), requires_grad=True, device=device)
    (x * x).sum().backward()
    assert ts.backend.device_of(x.grad) == device
    np.testing.assert_array_equal(to_numpy(x.grad), [0, 2, 4, 6])


def test_unknown_device_raises():
    with pytest.raises(ValueError, match="'tpu'"):
        ts.Tensor(np.ones(2), device="tpu")
