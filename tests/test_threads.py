"""Element-wise work split over threads: every slice once, errors raised, small arrays left whole; the ops that
split (ReLU, batch norm, Winograd's tile copies; max-pooling in test_conv.py) giving what they give on one thread;
and OpenBLAS's idle threads set to sleep, so that they leave the cores to the split work."""
import warnings

import numpy as np
import pytest
from split_threads import on_three_threads

import tinysiam as ts
import tinysiam.engine.threads as threads
from tinysiam import nn


@pytest.fixture
def three_threads():
    with on_three_threads(min_elements=threads.MIN_ELEMENTS):  # small arrays still run whole
        yield


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_split_covers_every_slice_once(three_threads, monkeypatch, size):
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 1)
    x = np.arange(4 * size * 5, dtype=float).reshape(4, size, 5)
    out = np.zeros_like(x)
    calls = []

    def add_one(a, b):
        calls.append(a.shape[1])
        b += a + 1

    threads.split(add_one, [x, out], axis=1)
    np.testing.assert_array_equal(out, x + 1)  # each element written once, by one thread
    assert sum(calls) == size and len(calls) == min(3, size)


def test_split_cuts_along_the_outermost_axis_in_memory(three_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 1)
    channel_first = np.zeros((6, 2, 4, 4)).transpose(1, 0, 2, 3)  # (N, C, H, W) stored as (C, N, H, W)
    shapes = []
    threads.split(lambda a: shapes.append(a.shape), [channel_first])
    assert sorted(shapes) == [(2, 2, 4, 4)] * 3  # three slices of channels, each one block of memory


def test_split_leaves_small_arrays_whole(three_threads):
    calls = []
    threads.split(lambda a: calls.append(a.shape), [np.zeros((2, 8, 3))])
    assert calls == [(2, 8, 3)]


def test_an_error_in_a_thread_is_raised(three_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 1)

    def fails(a):
        raise ValueError(f"slice of {a.shape[1]}")

    with pytest.raises(ValueError, match="slice of"):
        threads.split(fails, [np.zeros((2, 6))])


def test_relu_over_threads_is_relu(three_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 1)
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5, 4))
    x[0, 0, 0], x[1, 2, 3] = -np.inf, np.inf
    xt = ts.Tensor(x, requires_grad=True)
    y = xt.relu()
    y.backward(g)
    np.testing.assert_array_equal(y.numpy(), np.maximum(x, 0))
    np.testing.assert_array_equal(xt.grad, g * (x > 0))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_over_threads_is_batch_norm_on_one(three_threads, monkeypatch, training):
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((4, 5, 3, 3)), rng.standard_normal((4, 5, 3, 3))

    results = []
    for min_elements in (10**9, 1):  # one thread, then three
        monkeypatch.setattr(threads, "MIN_ELEMENTS", min_elements)
        layer = nn.BatchNorm2d(5).astype(np.float64)
        layer.running_mean, layer.running_var = np.full(5, 0.5), np.full(5, 2.0)
        layer.train(training)
        xt = ts.Tensor(x, requires_grad=True)
        y = layer(xt)
        y.backward(g)
        results.append((y.numpy(), xt.grad, layer.weight.grad, layer.bias.grad))
    for one, three in zip(*results):
        np.testing.assert_allclose(three, one, rtol=1e-12)


@pytest.mark.parametrize("padding, size", [(1, 6), (0, 7)])  # an odd output drops the tiles' last row
def test_winograd_over_threads_is_winograd_on_one(three_threads, monkeypatch, padding, size):
    from tinysiam.engine.conv import conv2d

    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 5, size, size)), rng.standard_normal((4, 5, 3, 3)), rng.standard_normal(4)
    results = []
    for min_elements in (10**9, 1):  # one thread, then three
        monkeypatch.setattr(threads, "MIN_ELEMENTS", min_elements)
        xt, wt, bt = (ts.Tensor(a, requires_grad=True) for a in (x, w, b))
        y = conv2d(xt, wt, bt, padding=padding, algorithm="winograd")
        y.backward(np.cos(y.numpy()))
        results.append((y.numpy(), xt.grad, wt.grad, bt.grad))
    for one, three in zip(*results):
        np.testing.assert_allclose(three, one, rtol=1e-12, atol=1e-12)


def test_a_forked_child_splits_on_threads_of_its_own():
    import os
    import threading
    import time

    if threads._pool is None:
        pytest.skip("one core: nothing is split")
    barrier = threading.Barrier(2)
    threads.split(lambda a: barrier.wait(timeout=10), [np.zeros((2, 2**17))], axis=0)  # every parent thread started
    pid = os.fork()
    if pid == 0:  # the child: the parent's threads are not here, and its pool would wait for them forever
        out = np.zeros((4, 2**17))
        threads.split(lambda a: a.fill(1), [out])
        os._exit(0 if out.all() else 1)
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's split never finished")
    assert os.waitstatus_to_exitcode(done[1]) == 0



def _in_a_fresh_process(code, **environment):
    """Runs ``code`` in a new Python with NumPy imported first (as a user's script does); its last printed line."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"} | environment
    done = subprocess.run([sys.executable, "-c", "import numpy as np\n" + code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.splitlines()[-1]


_BLAS_TIMEOUT_BEFORE_AND_AFTER_A_STEP = """
import os
import tinysiam as ts
from tinysiam.engine import threads
numpy_blas = [library for library in threads.loaded_openblas() if "numpy" in library._name]  # not SciPy's
before = numpy_blas[0].openblas_thread_timeout()
ts.Tensor(np.ones((4, threads.MIN_ELEMENTS))).relu()  # large enough to be split
a = np.random.default_rng(0).standard_normal((300, 300))
assert np.allclose(a @ a, np.einsum("ij,jk->ik", a, a))  # the restarted BLAS threads multiply right
print(before, numpy_blas[0].openblas_thread_timeout(), os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
"""


@pytest.fixture
def openblas_and_threads():
    if threads._pool is None:
        pytest.skip("one core: nothing is split, the BLAS is left as it is")
    if not any("numpy" in library._name for library in threads.loaded_openblas()):
        pytest.skip("NumPy's BLAS here is not the OpenBLAS of its wheel (numpy.libs)")


def test_the_first_split_lets_idle_blas_threads_sleep_even_when_numpy_came_first(openblas_and_threads):
    # 0: not read from the environment (import alone changes nothing); 4: OpenBLAS's shortest wait; None: the
    # environment as it was, so child processes get OpenBLAS's default
    assert _in_a_fresh_process(_BLAS_TIMEOUT_BEFORE_AND_AFTER_A_STEP) == "0 4 None"


def test_a_thread_timeout_the_user_chose_is_left_alone(openblas_and_threads):
    assert _in_a_fresh_process(_BLAS_TIMEOUT_BEFORE_AND_AFTER_A_STEP, OPENBLAS_THREAD_TIMEOUT="12") == "12 12 12"


def test_threads_keep_the_callers_floating_point_error_settings(three_threads, monkeypatch):
    monkeypatch.setattr(threads, "MIN_ELEMENTS", 1)
    x = np.full((3, 4), 1e30, np.float32)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        threads.split(lambda a: a * a, [x])
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")  # a thread's overflow warning would be raised here
        threads.split(lambda a: a * a, [x])
