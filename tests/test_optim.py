"""Optimizers against hand-computed updates; parameter groups; schedules; state; bad settings."""
import numpy as np
import pytest

from tinysiam import nn, optim


def param(*values):
    return nn.Parameter(np.array(values, dtype=np.float64))


def run(opt, p, grads):
    """One step per gradient; returns the parameter's values after each step."""
    values = []
    for g in grads:
        p.grad = np.array(g, dtype=np.float64)
        opt.step()
        values.append(p.data.copy())
    return values


def test_plain_sgd_by_hand():
    p = param(1.0, -2.0)
    values = run(optim.SGD([p], lr=0.1), p, [[0.5, 1.0], [-1.0, 0.0]])
    np.testing.assert_allclose(values, [[0.95, -2.1], [1.05, -2.1]])


def test_sgd_momentum_by_hand():
    # v1 = 0.5 -> p = 1 - 0.05 = 0.95;  v2 = 0.9 * 0.5 + 0.5 = 0.95 -> p = 0.855;
    # v3 = 0.9 * 0.95 + 0.5 = 1.355 -> 0.7195
    p = param(1.0)
    values = run(optim.SGD([p], lr=0.1, momentum=0.9), p, [[0.5]] * 3)
    np.testing.assert_allclose(np.ravel(values), [0.95, 0.855, 0.7195])


def test_sgd_nesterov_by_hand():
    # step 1: v = 0.5, update 0.5 + 0.9 * 0.5 = 0.95 -> 0.905;  step 2: v = 0.95, update 0.5 + 0.855 = 1.355 -> 0.7695
    p = param(1.0)
    values = run(optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [[0.5]] * 2)
    np.testing.assert_allclose(np.ravel(values), [0.905, 0.7695])


def test_sgd_weight_decay_by_hand():
    # the gradient becomes g + 0.1 * p:  step 1: 0.5 + 0.2 = 0.7 -> p = 2 - 0.07 = 1.93
    # step 2: g = 0.5 + 0.193 = 0.693, v = 0.5 * 0.7 + 0.693 = 1.043 -> p = 1.93 - 0.1043 = 1.8257
    p = param(2.0)
    values = run(optim.SGD([p], lr=0.1, momentum=0.5, weight_decay=0.1), p, [[0.5]] * 2)
    np.testing.assert_allclose(np.ravel(values), [1.93, 1.8257])


def test_adam_by_hand():
    p = param(1.0, -1.0)
    opt = optim.Adam([p], lr=0.01)
    m = v = np.zeros(2)
    expected = p.data.copy()
    grads = [np.array([0.3, -0.1]) * t for t in (1, 2, 3)]
    values = run(opt, p, grads)
    for t, (g, value) in enumerate(zip(grads, values), start=1):
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        expected = expected - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(value, expected)
    # the first step is lr * g / (|g| + eps): about lr, whatever the gradient's size
    q = param(1.0, 1.0)
    np.testing.assert_allclose(run(optim.Adam([q], lr=0.01), q, [[1e-3, -50.0]])[0],
                               [1 - 0.01 * 1e-3 / (1e-3 + 1e-8), 1 + 0.01 * 50 / (50 + 1e-8)])


def test_adam_weight_decay_adds_to_the_gradient():
    p, q = param(2.0), param(2.0)
    run(optim.Adam([p], lr=0.1, weight_decay=0.5), p, [[0.3], [0.1]])
    a = optim.Adam([q], lr=0.1)
    for g in (0.3, 0.1):
        q.grad = np.array([g + 0.5 * q.data[0]])
        a.step()
    np.testing.assert_allclose(p.data, q.data)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1, nesterov=True),
                                  lambda ps: optim.Adam(ps), lambda ps: optim.Adam(ps, weight_decay=0.1)])
def test_grads_are_never_modified_and_never_aliased(make):
    shared = np.array([[0.5, 0.25], [1.0, 2.0]])
    p = param(1.0, -2.0)
    opt = make([p])
    for _ in range(3):
        p.grad = shared[0]  # a view into a bigger array, as autograd may hand out
        opt.step()
    np.testing.assert_array_equal(shared, [[0.5, 0.25], [1.0, 2.0]])
    assert not any(np.shares_memory(a, shared) for a in opt.state.get(id(p), {}).values() if hasattr(a, "shape"))


def test_parameters_without_grad_are_skipped():
    a, b = param(1.0), param(1.0)
    opt = optim.SGD([a, b], lr=0.5, momentum=0.9)
    a.grad = np.array([1.0])
    opt.step()
    assert a.data[0] == 0.5 and b.data[0] == 1.0 and id(b) not in opt.state
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_parameter_groups_have_their_own_settings():
    a, b, c = param(1.0), param(1.0), param(1.0)
    opt = optim.SGD([{"params": [a], "lr": 1.0}, {"params": [b], "momentum": 0.5},
                     {"params": [c], "weight_decay": 1.0}],
                    lr=0.1)
    for _ in range(2):
        a.grad = b.grad = c.grad = np.array([1.0])
        opt.step()
    assert a.data[0] == pytest.approx(-1.0)  # lr 1: two steps of 1
    assert b.data[0] == pytest.approx(1 - 0.1 - 0.15)  # momentum 0.5: v = 1, then 1.5
    assert c.data[0] == pytest.approx(1 - 0.2 - 0.18)  # grad 1 + p: 2, then 1 + 0.8
    assert [g["lr"] for g in opt.param_groups] == [1.0, 0.1, 0.1]


def test_model_parameters_and_koch_style_groups():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = optim.SGD([{"params": model[0].parameters(), "lr": 1e-2}, {"params": model[2].parameters(), "lr": 1e-3}],
                    lr=0.1, momentum=0.5)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert optim.Adam(model.parameters()).param_groups[0]["betas"] == (0.9, 0.999)


def test_schedules_scale_each_group_from_its_initial_rate():
    opt = optim.SGD([{"params": [param(0.0)], "lr": 1.0}, {"params": [param(0.0)]}], lr=0.1)
    step = optim.StepLR(opt, step_size=2, gamma=0.5)
    rates = []
    for _ in range(4):
        step.step()
        rates.append([g["lr"] for g in opt.param_groups])
    np.testing.assert_allclose(rates, [[1.0, 0.1], [0.5, 0.05], [0.5, 0.05], [0.25, 0.025]])
    opt2 = optim.SGD([param(0.0)], lr=1.0)
    exp = optim.ExponentialLR(opt2, gamma=0.99)
    for _ in range(3):
        exp.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.99**3)
    with pytest.raises(ValueError, match="StepLR: step_size must be an integer >= 1, got 0"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="ExponentialLR: gamma must be a finite number > 0, got -1"):
        optim.ExponentialLR(opt, gamma=-1)


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=0.1),
                                  lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True)])
def test_state_dict_round_trip_continues_identically(make):
    grads = [[0.1, -0.2], [0.3, 0.1], [-0.2, 0.4], [0.05, 0.0]]
    p1 = param(1.0, 2.0)
    o1 = make([p1])
    run(o1, p1, grads[:2])
    state = o1.state_dict()
    p2 = param(*p1.data)
    o2 = make([p2])
    o2.load_state_dict(state)
    run(o1, p1, grads[2:])
    run(o2, p2, grads[2:])
    np.testing.assert_allclose(p1.data, p2.data)
    assert o2.steps == o1.steps == 4
    # the state holds copies: the run of o1 after state_dict() left it as it was
    o3 = make([param(*p2.data)])
    o3.load_state_dict(state)
    assert o3.steps == 2


def test_load_state_dict_errors():
    p = param(1.0, 2.0)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    run(opt, p, [[1.0, 1.0]])
    state = opt.state_dict()
    other = optim.SGD([param(1.0, 2.0, 3.0)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"param0.velocity has shape \(2,\), but parameter 0 has shape \(3,\)"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match=r"unexpected entry 'param1.velocity' \(this optimizer has 1 parameters"):
        opt.load_state_dict({**state, "param1.velocity": np.zeros(2)})
    with pytest.raises(ValueError, match=r"the state lacks \['group0.lr'\]"):
        opt.load_state_dict({"steps": 1})


def test_bad_settings_name_the_argument():
    p = param(0.0)
    with pytest.raises(ValueError, match="SGD: lr must be a finite number >= 0, got -1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="SGD: weight_decay must be a finite number >= 0, got -0.1"):
        optim.SGD([p], lr=0.1, weight_decay=-0.1)
    with pytest.raises(ValueError, match="SGD: momentum must be a finite number >= 0 and < 1, got 1.0"):
        optim.SGD([p], lr=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum > 0"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"Adam: betas must be a pair of numbers in \[0, 1\), got \(0.9, 1.0\)"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Adam: betas must be a pair"):
        optim.Adam([p], betas=0.9)
    with pytest.raises(ValueError, match="Adam: eps must be a finite number >= 0"):
        optim.Adam([p], eps=-1e-8)
    with pytest.raises(ValueError, match="SGD: lr must be a finite number >= 0, got -0.5"):
        optim.SGD([{"params": [p], "lr": -0.5}], lr=0.1)  # a group's own setting is checked too


def test_bad_parameter_lists():
    p = param(0.0)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match=r"group 0 needs a 'params' entry .*got keys \['lr', 'momentun'\]"):
        optim.SGD([{"lr": 0.1, "momentun": 0.9}], lr=0.1)
    with pytest.raises(TypeError, match="holds ndarray"):
        optim.SGD([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="not a mix"):
        optim.SGD([p, {"params": [param(1.0)]}], lr=0.1)


def test_cosine_schedule_and_exact_resume_of_a_schedule():
    opt = optim.SGD([param(0.0)], lr=2.0)
    cosine = optim.CosineLR(opt, total=4)
    rates = []
    for _ in range(5):
        cosine.step()
        rates.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(rates, [2 * (1 + np.cos(np.pi * t / 4)) / 2 for t in (1, 2, 3, 4, 4)], atol=1e-15)
    again = optim.CosineLR(optim.SGD([param(0.0)], lr=2.0), total=4)
    again.load_state_dict(optim.CosineLR(opt, total=4).state_dict() | {"t": 3})
    assert again.optimizer.param_groups[0]["lr"] == pytest.approx(rates[2])
    with pytest.raises(ValueError, match="CosineLR: total must be an integer >= 1, got 0"):
        optim.CosineLR(opt, total=0)


# ----- Koch et al. 2015's schedule: per-layer groups, a momentum ramp, 1% less rate an epoch -------------
def test_layer_groups_make_one_group_per_layer_in_model_order():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1, bias=False))
    groups = optim.layer_groups(model, [{"lr": 0.1}, {"lr": 0.2, "momentum": 0.9}])
    assert [[id(p) for p in g["params"]] for g in groups] == [[id(model[0].weight), id(model[0].bias)],
                                                              [id(model[3].weight)]]
    opt = optim.SGD(groups, lr=1.0, momentum=0.5)
    assert [(g["lr"], g["momentum"]) for g in opt.param_groups] == [(0.1, 0.5), (0.2, 0.9)]
    with pytest.raises(ValueError, match=r"got settings for 3 layers, but the model has 2 layers with parameters "
                                         r"\(0, 3\)"):
        optim.layer_groups(model, [{}] * 3)


def epochs_of(schedule, steps_per_epoch, epochs, key):
    """``key`` of every group at the first step of each epoch, the schedule stepped after every step."""
    seen = []
    for _ in range(epochs):
        seen.append([g[key] for g in schedule.optimizer.param_groups])
        for _ in range(steps_per_epoch):
            schedule.step()
    return seen


def test_momentum_ramps_linearly_each_epoch_from_a_half_to_each_groups_own():
    opt = optim.SGD([{"params": [param(0.0)], "momentum": 0.9}, {"params": [param(0.0)], "momentum": 0.7},
                     {"params": [param(0.0)], "momentum": 0.3}], lr=0.1)
    ramp = optim.MomentumRamp(opt, length=4, step_size=3)
    np.testing.assert_allclose(epochs_of(ramp, steps_per_epoch=3, epochs=6, key="momentum"),
                               [[0.5, 0.5, 0.5], [0.6, 0.55, 0.45], [0.7, 0.6, 0.4], [0.8, 0.65, 0.35],
                                [0.9, 0.7, 0.3], [0.9, 0.7, 0.3]], rtol=1e-15)
    again = optim.MomentumRamp(optim.SGD([{"params": [param(0.0)], "momentum": m} for m in (0.9, 0.7, 0.3)], lr=0.1),
                               length=4, step_size=3)
    again.load_state_dict(ramp.state_dict() | {"t": 7})  # epoch 2 (from 0)
    np.testing.assert_allclose([g["momentum"] for g in again.optimizer.param_groups], [0.7, 0.6, 0.4], rtol=1e-15)


def test_the_ramped_momentum_is_the_one_each_step_uses():
    p = param(1.0)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    ramp = optim.MomentumRamp(opt, length=1, step_size=1)
    for _ in range(3):
        p.grad = np.array([1.0])
        opt.step()
        ramp.step()
    # velocities 1, then 0.9 * 1 + 1 = 1.9 (the ramp is at 0.9 from the second step), then 0.9 * 1.9 + 1 = 2.71
    assert p.data[0] == pytest.approx(1 - 0.1 * (1 + 1.9 + 2.71))


def test_rates_fall_one_percent_an_epoch_in_every_group():
    opt = optim.SGD([{"params": [param(0.0)], "lr": 0.05}, {"params": [param(0.0)]}], lr=0.01)
    decay = optim.StepLR(opt, step_size=4, gamma=0.99)  # what the trainer uses: step_size = steps per epoch
    rates = epochs_of(decay, steps_per_epoch=4, epochs=11, key="lr")
    assert rates[10] == [0.05 * 0.99**10, 0.01 * 0.99**10]
    np.testing.assert_allclose(np.array(rates)[1:] / np.array(rates)[:-1], 0.99, rtol=1e-12)


def test_momentum_ramp_bad_arguments():
    opt = optim.SGD([param(0.0)], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="MomentumRamp: length must be an integer >= 1, got 0"):
        optim.MomentumRamp(opt, length=0)
    with pytest.raises(ValueError, match="MomentumRamp: step_size must be an integer >= 1, got 2.5"):
        optim.MomentumRamp(opt, length=3, step_size=2.5)
    with pytest.raises(ValueError, match="MomentumRamp: start must be a finite number >= 0 and < 1, got 1"):
        optim.MomentumRamp(opt, length=3, start=1)
    with pytest.raises(TypeError, match="MomentumRamp: needs an SGD optimizer .*got Adam"):
        optim.MomentumRamp(optim.Adam([param(0.0)]), length=3)
