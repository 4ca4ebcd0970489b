"""Optimizers against hand-computed updates; parameter groups; schedules; state."""
import numpy as np
import pytest

from tinysiam import nn, optim


def param(values):
    p = nn.Parameter(np.array(values, dtype=np.float64))
    return p


def test_sgd_momentum_and_weight_decay_by_hand():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    g = np.array([0.5, 0.25])
    v = np.zeros(2)
    expected = p.data.copy()
    for _ in range(3):
        p.grad = g.copy()
        opt.step()
        grad = g + 0.01 * expected
        v = grad if not v.any() else 0.9 * v + grad
        expected = expected - 0.1 * v
    np.testing.assert_allclose(p.data, expected)
    np.testing.assert_array_equal(p.grad, g)  # grads are never modified


def test_adam_by_hand():
    p = param([1.0, -1.0])
    opt = optim.Adam([p], lr=0.01)
    m = v = np.zeros(2)
    expected = p.data.copy()
    for t in range(1, 4):
        g = np.array([0.3, -0.1]) * t
        p.grad = g
        opt.step()
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        expected = expected - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(p.data, expected)


def test_parameter_groups_have_their_own_rates():
    a, b = param([1.0]), param([1.0])
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b]}], lr=0.1)
    a.grad = b.grad = np.array([1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.0) and b.data[0] == pytest.approx(0.9)


def test_schedules():
    opt = optim.SGD([param([0.0])], lr=1.0)
    step = optim.StepLR(opt, step_size=2, gamma=0.5)
    rates = []
    for _ in range(4):
        step.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates == [1.0, 0.5, 0.5, 0.25]
    opt2 = optim.SGD([param([0.0])], lr=1.0)
    exp = optim.ExponentialLR(opt2, gamma=0.99)
    exp.step(), exp.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.99**2)


def test_state_dict_round_trip_continues_identically():
    def run(opt, p, steps):
        for i in range(steps):
            p.grad = np.array([0.1 * (i + 1), -0.2])
            opt.step()

    p1 = param([1.0, 2.0])
    o1 = optim.Adam([p1], lr=0.1)
    run(o1, p1, 2)
    p2 = param(p1.data.copy())
    o2 = optim.Adam([p2], lr=0.1)
    o2.load_state_dict(o1.state_dict())
    run(o1, p1, 2)
    run(o2, p2, 2)
    np.testing.assert_allclose(p1.data, p2.data)


def test_bad_settings_name_the_argument():
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([param([0.0])], lr=-1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([param([0.0])], lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([param([0.0])], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
