"""The engine's workspace: buffers reused, never two holders of one buffer, a bounded size, the same results."""
import numpy as np
import pytest

from tinysiam import Tensor
from tinysiam.engine import workspace
from tinysiam.engine.conv import conv2d, max_pool2d
from tinysiam.engine.gradcheck import gradcheck
from tinysiam.engine.workspace import Workspace

SHAPE = (64, 1024)  # 256 KiB of float32: above the size malloc is left with


def test_a_released_buffer_is_reused():
    pool = Workspace()
    a = pool.empty(np, SHAPE, np.float32)
    address = a.ctypes.data
    del a
    b = pool.empty(np, SHAPE, np.float32)
    assert b.ctypes.data == address and pool.reuses == 1
    assert b.shape == SHAPE and b.dtype == np.float32 and b.flags.c_contiguous


def test_a_buffer_in_use_is_never_handed_out_twice():
    pool = Workspace()
    a = pool.empty(np, SHAPE, np.float32)
    b = pool.empty(np, SHAPE, np.float32)
    assert not np.shares_memory(a, b)
    view = a[10:].T  # a view keeps its buffer in use after the array itself is gone
    del a
    c = pool.empty(np, SHAPE, np.float32)
    assert not np.shares_memory(view, c) and not np.shares_memory(b, c)
    assert pool.reuses == 0


def test_a_graph_gives_its_buffers_back_when_released():
    pool = Workspace()
    graph_scratch = pool.empty(np, SHAPE, np.float32)  # what an op saves for its backward

    class Op:
        pass

    op = Op()
    op.saved = graph_scratch.reshape(-1)
    del graph_scratch
    assert not np.shares_memory(pool.empty(np, SHAPE, np.float32), op.saved)
    op.__dict__.clear()  # what Function.release does after backward
    pool.empty(np, SHAPE, np.float32)
    assert pool.reuses == 1


def test_the_bound_holds_and_requests_beyond_it_get_fresh_memory():
    size = np.prod(SHAPE) * 4
    pool = Workspace(limit_bytes=3 * size)
    held = [pool.empty(np, SHAPE, np.float32) for _ in range(5)]
    assert pool.held_bytes == 3 * size
    assert not any(np.shares_memory(a, b) for i, a in enumerate(held) for b in held[i + 1:])
    del held
    other = pool.empty(np, (SHAPE[0] * 2, SHAPE[1]), np.float32)  # evicts free buffers to make room
    assert pool.held_bytes <= 3 * size and other.shape == (128, 1024)
    assert pool.set_limit(0) == 3 * size
    del other
    pool.set_limit(0)
    assert pool.held_bytes == 0


def test_float32_and_float64_share_buffers_of_the_same_size():
    pool = Workspace()
    a = pool.empty(np, SHAPE, np.float64)
    a[...] = 1.5
    address = a.ctypes.data
    del a
    b = pool.empty(np, (SHAPE[0], 2 * SHAPE[1]), np.float32)
    assert b.ctypes.data == address and b.dtype == np.float32
    b = pool.zeros(np, SHAPE, np.float64)
    assert b.dtype == np.float64 and not b.any()


def test_small_arrays_are_left_to_malloc():
    pool = Workspace()
    small = pool.empty(np, (4, 4), np.float32)
    assert small.base is None and pool.held_bytes == 0


def test_empty_like_keeps_the_memory_order():
    pool = Workspace()
    channel_first = np.zeros((16, 8, 32, 32), np.float32).transpose(1, 0, 2, 3)
    like = pool.empty_like(channel_first, bool)
    assert like.shape == channel_first.shape and like.dtype == bool
    assert like.transpose(1, 0, 2, 3).flags.c_contiguous


@pytest.fixture
def every_array_pooled(monkeypatch):
    """The engine's workspace for arrays of any size, so that tests of a few elements exercise it."""
    monkeypatch.setattr(workspace, "MIN_BYTES", 0)
    return workspace.WORKSPACE


def _conv_net(x, w, b, algorithm):
    return max_pool2d(conv2d(x, w, b, padding=1, algorithm=algorithm).relu(), 2).sum()


@pytest.mark.parametrize("algorithm", ["im2col", "winograd", "fft"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_are_the_same_with_and_without_reuse(every_array_pooled, algorithm, dtype):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in ((3, 4, 9, 9), (5, 4, 3, 3), (5,))]

    def step():
        leaves = [Tensor(a, requires_grad=True) for a in arrays]
        loss = _conv_net(*leaves, algorithm)
        loss.backward()
        return [loss.numpy()] + [leaf.grad for leaf in leaves]

    previous = every_array_pooled.set_limit(0)
    try:
        fresh = step()
    finally:
        every_array_pooled.set_limit(previous)
    reuses = every_array_pooled.reuses
    step()
    reused = step()  # the second step runs on the first one's buffers
    assert every_array_pooled.reuses > reuses
    for a, b in zip(fresh, reused):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("algorithm", ["im2col", "winograd", "fft"])
def test_gradients_through_convolution_with_reuse(every_array_pooled, algorithm):
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    reuses = every_array_pooled.reuses
    gradcheck(lambda *t: _conv_net(*t, algorithm), x, w, b)
    assert every_array_pooled.reuses > reuses
