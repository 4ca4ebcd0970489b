"""The gradient checker itself: it must catch wrong gradients and say where."""
import numpy as np
import pytest

import tinysiam as ts
from tinysiam.gradcheck import GradcheckError, gradcheck


class Cube(ts.Function):
    def __init__(self, wrong=False):
        self.wrong = wrong

    def forward(self, x):
        self.x = x
        return x**3

    def backward(self, g):
        return g * (2 if self.wrong else 3) * self.x**2


@pytest.mark.parametrize("mode", ["elementwise", "direction"])
def test_catches_a_wrong_backward_and_reports_where(mode):
    x = np.random.default_rng(0).uniform(0.5, 1.5, (3, 4))
    gradcheck(lambda t: Cube()(t), x, mode=mode)
    with pytest.raises(GradcheckError) as failure:
        gradcheck(lambda t: Cube(wrong=True)(t), x, mode=mode)
    report = str(failure.value)
    assert "input 0" in report and "MISMATCH" in report and "analytic" in report and "numeric" in report
    check = failure.value.result.inputs[0]
    assert check.analytic == pytest.approx(2 / 3 * check.numeric, rel=1e-4)


def test_elementwise_report_names_the_worst_element():
    class WrongAtOne(Cube):
        def backward(self, g):
            grad = super().backward(g)
            grad[1, 2] += 1.0
            return grad

    result = gradcheck(lambda t: WrongAtOne()(t), np.ones((2, 3)), raise_on_failure=False)
    assert not result.passed and result.inputs[0].worst == (1, 2)


def test_detects_an_op_that_mutates_its_input():
    class Mutating(ts.Function):
        def forward(self, x):
            out = x * 2
            x += 1e-3  # in place: writes into gradcheck's input array
            return out

        def backward(self, g):
            return 2 * g

    result = gradcheck(lambda t: Mutating()(t), np.ones(3), raise_on_failure=False)
    assert any("modified its input" in p for p in result.problems)


def test_detects_a_backward_that_ignores_the_upstream_gradient():
    class IgnoresUpstream(ts.Function):
        def forward(self, x):
            return x.sum(keepdims=True)

        def backward(self, g):
            return np.ones(3)  # forgets to multiply by g

    result = gradcheck(lambda t: IgnoresUpstream()(t).sum(), np.ones(3), raise_on_failure=False)
    assert any("zero upstream" in p for p in result.problems)


def test_detects_a_non_deterministic_backward():
    rng = np.random.default_rng(0)

    class Noisy(ts.Function):
        def forward(self, x):
            return 2 * x

        def backward(self, g):
            return 2 * g + rng.normal(0, 1e-9, g.shape) * (g != 0)

    result = gradcheck(lambda t: Noisy()(t), np.ones(3), raise_on_failure=False)
    assert any("second backward" in p for p in result.problems)


def test_integer_inputs_and_constant_tensors_are_held_constant():
    labels = np.array([0, 1, 1])
    constant = ts.Tensor(np.ones(3))
    result = gradcheck(lambda x, y, c: x * y.astype(np.float64) * c, np.ones(3), labels, constant)
    assert [c.index for c in result.inputs] == [0]


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        gradcheck(lambda t: t, np.ones(2), mode="fast")
    with pytest.raises(ValueError, match="eps"):
        gradcheck(lambda t: t, np.ones(2), eps=0)
    with pytest.raises(ValueError, match="no floating-point input"):
        gradcheck(lambda t: t, np.arange(2))
