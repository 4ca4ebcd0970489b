"""The gradient checker itself: it must catch wrong gradients and say where."""
import numpy as np
import pytest
from conftest import on

import tinysiam as ts
from tinysiam.engine.gradcheck import ELEMENTWISE_LIMIT, GradcheckError, gradcheck


class Cube(ts.Function):
    """x^3, with a deliberately wrong derivative 2x^2 when ``wrong``."""

    def __init__(self, wrong=False):
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, g):  # d(x^3)/dx = 3x^2
        return g * (2 if self.wrong else 3) * self.x**2


class WrongAt(Cube):
    """Cube whose gradient is off by one at a single element."""

    def __init__(self, where):
        super().__init__()
        self.where = where

    def backward(self, g):
        grad = super().backward(g)
        grad[self.where] += 1.0 * g[self.where]
        return grad


@pytest.mark.parametrize("mode", ["elementwise", "direction"])
def test_catches_a_wrong_backward_and_passes_a_correct_one(device, mode):
    x, = on(device, np.random.default_rng(0).uniform(0.5, 1.5, (3, 4)))
    result = gradcheck(lambda t: Cube()(t), x, mode=mode)
    assert result.passed and result.inputs[0].mode == mode and result.max_rel_error < 1e-6
    with pytest.raises(GradcheckError) as failure:
        gradcheck(lambda t: Cube(wrong=True)(t), x, mode=mode)
    report = str(failure.value)
    assert "FAILED" in report and "input 0" in report and "MISMATCH" in report
    check = failure.value.result.inputs[0]
    assert not check.passed and check.mode == mode
    assert check.analytic == pytest.approx(2 / 3 * check.numeric, rel=1e-6)  # 2x^2 claimed where 3x^2 is true
    assert f"analytic {check.analytic:.10g} vs numeric {check.numeric:.10g}" in report


def test_report_names_the_input_and_the_worst_element():
    x, w = np.random.default_rng(1).uniform(0.5, 1.5, (2, 2)), np.ones((2, 3))
    result = gradcheck(lambda a, b: (a * 2.0).sum() + WrongAt((1, 2))(b).sum(), x, w, raise_on_failure=False)
    assert not result.passed
    first, second = result.inputs
    assert (first.index, first.passed) == (0, True)
    assert (second.index, second.passed, second.worst) == (1, False, (1, 2))
    assert second.analytic - second.numeric == pytest.approx(second.numeric / 3, rel=1e-6)  # off by g; 3x^2 g = 3g
    lines = result.report().splitlines()
    assert "input 0 shape (2, 2) [elementwise] ok" in lines[1]
    assert "input 1 shape (2, 3) [elementwise] MISMATCH: worst at element (1, 2)" in lines[2]


def test_auto_mode_switches_to_directions_for_large_inputs():
    small, large = np.ones(ELEMENTWISE_LIMIT), np.ones(ELEMENTWISE_LIMIT + 1)
    result = gradcheck(lambda a, b: a.sum() + (b * b).sum(), small, large)
    assert [c.mode for c in result.inputs] == ["elementwise", "direction"]
    failed = gradcheck(lambda b: WrongAt(7)(b), large, raise_on_failure=False)
    assert not failed.passed and failed.inputs[0].mode == "direction"


def test_detects_an_op_that_mutates_its_input():
    class Mutating(ts.Function):
        def forward(self, x):
            out = x * 2
            x += 1e-3  # in place: writes into gradcheck's input array
            return out

        def backward(self, g):  # d(2x)/dx = 2
            return 2 * g

    result = gradcheck(lambda t: Mutating()(t), np.ones(3), raise_on_failure=False)
    assert not result.passed
    assert "input 0: fn modified its input in place" in result.problems


def test_detects_a_backward_that_ignores_the_upstream_gradient():
    class Constant(ts.Function):
        """Doubles x; backward returns 2 whatever the upstream gradient."""

        def forward(self, x):
            return 2 * x

        def backward(self, g):  # wrong on purpose: d(2x)/dx = 2 must be multiplied by g
            return np.full(g.shape, 2.0)

    result = gradcheck(lambda t: Constant()(t), np.ones(3), raise_on_failure=False)
    assert "input 0: a zero upstream gradient gave a non-zero gradient" in result.problems
    assert not result.passed


def test_detects_a_non_deterministic_backward():
    rng = np.random.default_rng(0)

    class Noisy(ts.Function):
        def forward(self, x):
            return 2 * x

        def backward(self, g):  # d(2x)/dx = 2, plus noise far below the tolerance
            return 2 * g + rng.normal(0, 1e-9, g.shape) * (g != 0)

    result = gradcheck(lambda t: Noisy()(t), np.ones(3), raise_on_failure=False)
    assert result.inputs[0].passed  # the finite differences alone cannot see it
    assert "input 0: a second backward pass gave different gradients" in result.problems
    assert not result.passed


@pytest.mark.parametrize("error, passes", [(5e-5, True), (2e-4, False)])
def test_tolerance_is_relative_to_the_numeric_value(error, passes):
    class Scaled(ts.Function):
        """100 x, with a derivative off by the relative ``error``."""

        def forward(self, x):
            return 100 * x

        def backward(self, g):  # d(100x)/dx = 100, times (1 + error) on purpose
            return 100 * (1 + error) * g

    result = gradcheck(lambda t: Scaled()(t), np.ones((2, 3)), rtol=1e-4, raise_on_failure=False)
    assert result.passed == passes
    assert result.max_rel_error == pytest.approx(error, rel=0.05)  # |n| >= 100 |v| dwarfs atol / rtol = 0.1


def test_integer_inputs_and_constant_tensors_are_held_constant():
    labels = np.array([0, 1, 1])
    constant = ts.Tensor(np.ones(3))
    result = gradcheck(lambda x, y, c: x * y.astype(np.float64) * c, np.ones(3), labels, constant)
    assert [c.index for c in result.inputs] == [0]


def test_an_unused_input_has_zero_gradient():
    result = gradcheck(lambda a, b: a * 2.0, np.ones(2), np.ones(2))
    assert [c.passed for c in result.inputs] == [True, True]


def test_a_missing_gradient_of_a_used_input_is_caught():
    class ForgetsB(ts.Function):
        def forward(self, a, b):
            self.b = b
            return a * b

        def backward(self, g):  # d(ab)/da = b; wrong on purpose: d(ab)/db = a is left out
            return g * self.b, None

    result = gradcheck(lambda a, b: ForgetsB()(a, b), np.full(2, 3.0), np.full(2, 5.0), raise_on_failure=False)
    assert [c.passed for c in result.inputs] == [True, False]


def test_the_callers_arrays_are_not_touched():
    x = np.array([1.0, 2.0], dtype=np.float32)
    gradcheck(lambda t: t * t, x)
    assert x.dtype == np.float32 and x.tolist() == [1.0, 2.0]


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode must be .* got 'fast'"):
        gradcheck(lambda t: t, np.ones(2), mode="fast")
    for eps in (0, -1e-6):
        with pytest.raises(ValueError, match=f"eps must be positive, got {eps}"):
            gradcheck(lambda t: t, np.ones(2), eps=eps)
    with pytest.raises(ValueError, match="rtol > 0"):
        gradcheck(lambda t: t, np.ones(2), rtol=0)
    with pytest.raises(ValueError, match="n_directions must be at least 1, got 0"):
        gradcheck(lambda t: t, np.ones(2), n_directions=0)
    with pytest.raises(ValueError, match="no floating-point input"):
        gradcheck(lambda t: t, np.arange(2))
    with pytest.raises(TypeError, match="must return a Tensor"):
        gradcheck(lambda t: t.data, np.ones(2))
    with pytest.raises(TypeError, match="dtype float32"):
        gradcheck(lambda t: t.astype(np.float32), np.ones(2))
