"""Layers and modules: gradients of inputs and parameters, known values, modes, state, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import nn
from tinysiam.app.catalogue.layers import layer_check, randomised_batchnorm
from tinysiam.app.catalogue.ops import away_from_zero, distinct
from tinysiam.engine.gradcheck import gradcheck

FAST = settings(max_examples=10, deadline=None)
seeds = st.integers(0, 2**16)


def check_layer(layer, x, train=True):
    """gradcheck of the input and every parameter, in float64."""
    check = layer_check("layer", layer, x, train)
    gradcheck(check.fn, *check.inputs)


def tensor(values, dtype=np.float32):
    return ts.Tensor(np.asarray(values, dtype=dtype))


# ----- gradients -------------------------------------------------------------------------
@FAST
@given(lead=st.lists(st.integers(1, 3), min_size=0, max_size=2), fin=st.integers(1, 5), fout=st.integers(1, 4),
       bias=st.booleans(), seed=seeds)
def test_linear_gradients(lead, fin, fout, bias, seed):
    rng = np.random.default_rng(seed)
    check_layer(nn.Linear(fin, fout, bias=bias, rng=rng), rng.standard_normal((*lead, fin)))


@FAST
@given(n=st.integers(1, 2), c=st.integers(1, 3), oc=st.integers(1, 3),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), bias=st.booleans(), seed=seeds)
def test_conv2d_gradients(n, c, oc, kernel, stride, padding, extra, bias, seed):
    rng = np.random.default_rng(seed)
    h, w = kernel[0] + extra[0], kernel[1] + extra[1]  # at least one window, odd and even sizes
    layer = nn.Conv2d(c, oc, kernel, stride=stride, padding=padding, bias=bias, rng=rng)
    check_layer(layer, rng.standard_normal((n, c, h, w)))


@FAST
@given(n=st.integers(1, 2), c=st.integers(1, 2), kernel=st.integers(1, 3),
       stride=st.one_of(st.none(), st.integers(1, 3)),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), seed=seeds)
def test_maxpool2d_gradients(n, c, kernel, stride, extra, seed):
    rng = np.random.default_rng(seed)
    x = distinct(rng, (n, c, kernel + extra[0], kernel + extra[1]))  # no ties: the maximum is unique
    check_layer(nn.MaxPool2d(kernel, stride), x)


@FAST
@given(layer=st.sampled_from([nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Flatten]),
       shape=st.lists(st.integers(1, 4), min_size=2, max_size=4), seed=seeds)
def test_activation_and_flatten_gradients(layer, shape, seed):
    rng = np.random.default_rng(seed)
    check_layer(layer(), away_from_zero(rng, shape))  # ReLU's kink at 0 stays out of reach


@FAST
@given(p=st.floats(0.0, 0.9), shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), seed=seeds)
def test_dropout_gradient_is_its_mask(p, shape, seed):
    layer = nn.Dropout(p)

    def fixed_mask_dropout(x):
        layer.rng = np.random.default_rng(seed)  # the same mask on every call
        return layer(x)

    x = np.random.default_rng(seed + 1).standard_normal(shape)
    gradcheck(fixed_mask_dropout, x)
    xt = ts.Tensor(x, requires_grad=True)
    fixed_mask_dropout(xt).sum().backward()
    mask = np.random.default_rng(seed).random(shape) >= p if p else np.ones(shape, bool)
    np.testing.assert_allclose(xt.grad, mask / (1 - p))


@FAST
@given(n=st.integers(1, 4), c=st.integers(1, 3), spatial=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       train=st.booleans(), seed=seeds)
def test_batchnorm_gradients(n, c, spatial, train, seed):
    rng = np.random.default_rng(seed)
    # training needs two values per feature to take statistics: a batch of one is fine when H x W > 1
    n2d = 2 if train and n * spatial[0] * spatial[1] == 1 else n
    check_layer(randomised_batchnorm(nn.BatchNorm2d(c), rng), rng.standard_normal((n2d, c, *spatial)), train)
    x = rng.standard_normal((max(n, 2) if train else n, c))
    check_layer(randomised_batchnorm(nn.BatchNorm1d(c), rng), x, train)
    n1d = 2 if train and n * spatial[0] == 1 else n
    check_layer(randomised_batchnorm(nn.BatchNorm1d(c), rng), rng.standard_normal((n1d, c, spatial[0])), train)


def test_sequential_gradients():
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3, 2, rng=rng), nn.BatchNorm1d(2), nn.Sigmoid())
    check_layer(model, rng.standard_normal((4, 2, 5, 5)))


# ----- known values -----------------------------------------------------------------------
def test_linear_known_value():
    layer = nn.Linear(2, 3)
    layer.weight.data = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    layer.bias.data = np.array([0.5, -1, 0], np.float32)
    np.testing.assert_allclose(layer(tensor([[1, -1], [0, 2]])).numpy(), [[-0.5, -2, -1], [4.5, 7, 12]])
    one = layer(tensor([0, 2]))  # a 1-D input, as in PyTorch: (in_features,) -> (out_features,)
    assert one.shape == (3,)
    np.testing.assert_allclose(one.numpy(), [4.5, 7, 12])


def test_linear_weight_gradient_is_in_the_weight_layout():
    layer = nn.Linear(3, 2)
    layer(tensor(np.ones((4, 3)))).sum().backward()
    assert layer.weight.grad.flags.c_contiguous and layer.weight.grad.shape == (2, 3)
    np.testing.assert_array_equal(layer.weight.grad, np.full((2, 3), 4.0))


def test_conv2d_known_values():
    x = tensor(np.arange(9).reshape(1, 1, 3, 3))  # [[0 1 2] [3 4 5] [6 7 8]]
    layer = nn.Conv2d(1, 1, 2)
    layer.weight.data = np.array([[[[1, 2], [3, 4]]]], np.float32)
    layer.bias.data = np.array([0.5], np.float32)
    # top-left window: 0*1 + 1*2 + 3*3 + 4*4 = 27, and so on
    np.testing.assert_allclose(layer(x).numpy(), [[[[27.5, 37.5], [57.5, 67.5]]]])
    layer.stride, layer.padding = 2, 1
    # zero-padded to 5x5; windows at rows/cols 0 and 2: [[0 0] [0 0]], [[0 0] [1 2]], [[0 3] [0 6]], [[4 5] [7 8]]
    np.testing.assert_allclose(layer(x).numpy(), [[[[0.5, 11.5], [30.5, 67.5]]]])


def test_maxpool2d_known_values():
    x = tensor(np.array([[1, 5, 2, 0, 3], [4, 0, 9, 1, 1], [7, 2, 3, 8, 6]]).reshape(1, 1, 3, 5))
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).numpy(), [[[[5, 9]]]])
    np.testing.assert_array_equal(nn.MaxPool2d(3, stride=2)(x).numpy(), [[[[9, 9]]]])


# ----- BatchNorm and Dropout modes ------------------------------------------------------------
def test_batchnorm2d_statistics_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 4, 4)).astype(np.float32) * 2 + 1
    layer = nn.BatchNorm2d(3)
    y = layer(ts.Tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y, (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), atol=1e-5)
    np.testing.assert_allclose(layer.running_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * var * 128 / 127, rtol=1e-5)  # unbiased: M = 128
    layer.eval()
    expected = (x - layer.running_mean[:, None, None]) / np.sqrt(layer.running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(layer(ts.Tensor(x)).numpy(), expected, atol=1e-5)


def test_batchnorm1d_on_sequences_normalises_each_channel_over_batch_and_length():
    rng = np.random.default_rng(2)
    x = rng.normal(2, 3, (4, 3, 5)).astype(np.float32)  # (N, C, L)
    layer = nn.BatchNorm1d(3)
    y = layer(ts.Tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    np.testing.assert_allclose(y, (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5), atol=1e-5)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * var * 20 / 19, rtol=1e-5)  # unbiased: M = N * L = 20
    layer.eval()
    expected = (x - layer.running_mean[:, None]) / np.sqrt(layer.running_var[:, None] + 1e-5)
    np.testing.assert_allclose(layer(ts.Tensor(x)).numpy(), expected, atol=1e-5)


def test_batchnorm1d_running_statistics_over_several_batches():
    rng = np.random.default_rng(1)
    layer = nn.BatchNorm1d(2, momentum=0.3)
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(3):
        x = rng.normal(3, 2, (5, 2)).astype(np.float32)
        layer(ts.Tensor(x))
        mean = 0.7 * mean + 0.3 * x.mean(axis=0)
        var = 0.7 * var + 0.3 * x.var(axis=0, ddof=1)
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-5)
    assert layer.running_mean.dtype == layer.running_var.dtype == np.float32
    layer.eval()
    x = rng.standard_normal((1, 2)).astype(np.float32)  # one row is fine in eval
    y = layer(ts.Tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), (x - mean) / np.sqrt(var + 1e-5), rtol=1e-5)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match=r"more than one value per feature.*\(1, 3\)"):
        nn.BatchNorm1d(3)(tensor(np.ones((1, 3))))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected input \(N, 3, H, W\), got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(tensor(np.ones((2, 3))))
    expected = r"BatchNorm1d\(3\): expected input \(N, 3\) or \(N, 3, L\), got shape \(4, 2\)"
    with pytest.raises(ValueError, match=expected):
        nn.BatchNorm1d(3)(tensor(np.ones((4, 2))))
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\).*got shape \(4, 3, 2, 2\)"):
        nn.BatchNorm1d(3)(tensor(np.ones((4, 3, 2, 2))))
    with pytest.raises(TypeError, match="BatchNorm1d: input has dtype float64 but the layer's parameters are float32"):
        nn.BatchNorm1d(3)(tensor(np.ones((4, 3)), np.float64))
    with pytest.raises(ValueError, match="momentum must be in"):
        nn.BatchNorm1d(3, momentum=1.5)


def test_dropout_scales_in_training_and_is_identity_in_eval():
    layer = nn.Dropout(0.5, rng=np.random.default_rng(0))
    x = ts.Tensor(np.ones((100, 100), np.float32))
    y = layer(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0} and abs((y == 0).mean() - 0.5) < 0.02
    assert y.dtype == np.float32
    layer.eval()
    assert layer(x) is x


def test_dropout_masks_are_reproducible():
    x = ts.Tensor(np.ones((4, 6), np.float32))
    first = nn.Dropout(0.5, rng=np.random.default_rng(3))(x).numpy()
    again = nn.Dropout(0.5, rng=np.random.default_rng(3))(x).numpy()
    np.testing.assert_array_equal(first, again)
    nn.init.seed(5)
    shared = nn.Dropout(0.5)  # no rng: the shared generator, reseeded by init.seed
    a = shared(x).numpy()
    nn.init.seed(5)
    np.testing.assert_array_equal(shared(x).numpy(), a)
    assert not np.array_equal(shared(x).numpy(), a)  # the next mask is a new draw


@pytest.mark.parametrize("p", [-0.1, 1.0, 2, "0.5"])
def test_dropout_rejects_p_outside_0_1(p):
    with pytest.raises(ValueError, match="Dropout: p must be a finite number >= 0 and < 1, got"):
        nn.Dropout(p)


# ----- Module: registration, traversal, modes ------------------------------------------------
class Tower(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.norm = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, 3)
        self.scale = nn.Parameter(np.ones(1, np.float32))
        self.note = "not registered"


class Twin(nn.Module):
    def __init__(self):
        super().__init__()
        self.tower = Tower()
        self.same_tower = self.tower  # shared: listed once


def test_named_parameters_buffers_children_and_modules():
    model = Twin()
    names = [name for name, _ in model.named_parameters()]
    # a module's own parameters first, then its children's, as in PyTorch
    assert names == ["tower.scale", "tower.conv1.weight", "tower.conv1.bias", "tower.norm.weight", "tower.norm.bias",
                     "tower.fc.weight", "tower.fc.bias"]
    assert [p.shape for p in model.parameters()][:3] == [(1,), (2, 1, 3, 3), (2,)]
    assert [name for name, _ in model.named_buffers()] == ["tower.norm.running_mean", "tower.norm.running_var"]
    assert list(model.children()) == [model.tower, model.tower]
    assert [type(m).__name__ for m in model.modules()] == ["Twin", "Tower", "Conv2d", "BatchNorm2d", "Linear"]
    assert list(model.state_dict()) == names + ["tower.norm.running_mean", "tower.norm.running_var"]
    model.tower.fc = None  # reassigning an attribute unregisters what was there
    assert not any(name.startswith("tower.fc") for name, _ in model.named_parameters())


def test_train_eval_and_zero_grad():
    model = Twin()
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_module_errors_and_repr():
    class Forgetful(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match="call super\\(\\).__init__\\(\\)"):
        Forgetful()
    with pytest.raises(NotImplementedError, match="Module does not define forward"):
        nn.Module()(tensor([1.0]))
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.2)))
    assert repr(model) == ("Sequential(\n  (0): Linear(2, 3, bias=True)\n  (1): Sequential(\n    (0): ReLU()\n"
                           "    (1): Dropout(p=0.2)\n  )\n)")


def test_sequential_indexing():
    layers = [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers and model[-1] is layers[2]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and list(head) == layers[:2] and head[0].weight is layers[0].weight
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with pytest.raises(TypeError, match="Sequential: item 1 is a function, not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# ----- state_dict ------------------------------------------------------------------------------
def small_model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 1))


def test_state_dict_round_trip_and_copies():
    model = small_model()
    # moves the running statistics
    model(ts.Tensor(np.random.default_rng(0).standard_normal((3, 1, 3, 3)).astype(np.float32)))
    state = model.state_dict()
    assert "1.running_mean" in state and "1.running_mean" not in dict(model.named_parameters())
    other = small_model()
    assert not np.array_equal(other.state_dict()["0.weight"], state["0.weight"])
    assert other.load_state_dict(state) == ([], [])
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    state["0.weight"][:] = 0  # the state holds copies: neither model changes
    assert model[0].weight.data.any() and other[0].weight.data.any()


def test_load_state_dict_reports_every_problem_and_changes_nothing():
    model = nn.Linear(3, 2)
    before = model.state_dict()
    bad = {"weight": np.zeros((3, 3)), "extra": np.zeros(1)}
    with pytest.raises(ValueError) as error:
        model.load_state_dict(bad)
    message = str(error.value)
    assert "missing: ['bias']" in message and "unexpected: ['extra']" in message
    assert "weight: expected shape (2, 3), got (3, 3)" in message
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_not_strict():
    model = nn.Linear(3, 2)
    weight = np.full((2, 3), 0.5)
    missing, unexpected = model.load_state_dict({"weight": weight, "extra": np.zeros(1)}, strict=False)
    assert (missing, unexpected) == (["bias"], ["extra"])
    assert model.weight.dtype == np.float32 and np.all(model.weight.data == 0.5)
    with pytest.raises(ValueError, match=r"weight: expected shape \(2, 3\), got \(3,\)"):
        model.load_state_dict({"weight": np.zeros(3)}, strict=False)  # shapes must fit even when not strict


# ----- input errors and initialisers ------------------------------------------------------------
def test_layer_input_errors_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Linear\(3, 2\): input has shape \(4, 5\), expected last dimension 3"):
        nn.Linear(3, 2)(tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4\): expected input \(N, 3, H, W\), got shape \(1, 1, 8, 8\)"):
        nn.Conv2d(3, 4, 3)(tensor(np.ones((1, 1, 8, 8))))
    for layer in (nn.Linear(3, 2), nn.Conv2d(1, 1, 1), nn.MaxPool2d(2), nn.ReLU(), nn.Sigmoid(), nn.Tanh(),
                  nn.Dropout(0.5), nn.BatchNorm2d(1)):
        with pytest.raises(TypeError, match=f"{type(layer).__name__}: input has dtype int64"):
            layer(ts.Tensor(np.ones((1, 1, 2, 3), np.int64)))
    with pytest.raises(TypeError, match="Linear: input has dtype float64 but the layer's weight is float32"):
        nn.Linear(3, 2)(tensor(np.ones((4, 3)), np.float64))
    with pytest.raises(ValueError, match="Linear: in_features must be an integer >= 1, got 0"):
        nn.Linear(0, 2)
    with pytest.raises(ValueError, match="Conv2d: out_channels must be an integer >= 1, got 2.5"):
        nn.Conv2d(1, 2.5, 3)


def test_initialisers_have_the_stated_statistics():
    rng = np.random.default_rng(0)
    shape, fan_in, fan_out = (400, 500), 500, 400
    he = nn.init.he_normal(shape, fan_in, rng)
    assert he.dtype == np.float32 and he.shape == shape
    assert he.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02) and abs(he.mean()) < 1e-3
    he_u = nn.init.he_uniform(shape, fan_in, rng)
    assert np.abs(he_u).max() <= np.sqrt(6 / fan_in) and he_u.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    limit = np.sqrt(6 / (fan_in + fan_out))
    g = nn.init.glorot_uniform(shape, fan_in, fan_out, rng)
    assert np.abs(g).max() <= limit and g.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    gn = nn.init.glorot_normal(shape, fan_in, fan_out, rng)
    assert gn.std() == pytest.approx(np.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    assert nn.init.koch_conv((100, 1000), rng).std() == pytest.approx(1e-2, rel=0.02)
    assert nn.init.koch_dense((100, 1000), rng).std() == pytest.approx(0.2, rel=0.02)
    bias = nn.init.koch_bias((100000,), rng)
    assert bias.mean() == pytest.approx(0.5, abs=1e-3) and bias.std() == pytest.approx(1e-2, rel=0.02)


def test_layers_use_the_named_initialiser():
    rng = np.random.default_rng(0)
    koch = nn.Linear(1000, 200, init="koch", rng=rng)
    assert koch.weight.data.std() == pytest.approx(0.2, rel=0.02)
    assert koch.bias.data.mean() == pytest.approx(0.5, abs=0.01)
    conv = nn.Conv2d(40, 50, 5, init="koch", rng=rng)
    assert conv.weight.data.std() == pytest.approx(1e-2, rel=0.02)
    glorot = nn.Linear(300, 200, init="glorot", rng=rng)
    assert np.abs(glorot.weight.data).max() <= np.sqrt(6 / 500) and not glorot.bias.data.any()
    with pytest.raises(ValueError, match="init must be 'he', 'glorot' or 'koch', got 'xavier'"):
        nn.Linear(2, 2, init="xavier")


def test_seed_makes_models_reproducible():
    nn.init.seed(7)
    a = small_model().state_dict()
    nn.init.seed(7)
    b = small_model().state_dict()
    c = small_model().state_dict()
    np.testing.assert_array_equal(a["0.weight"], b["0.weight"])
    assert not np.array_equal(b["0.weight"], c["0.weight"])


def test_module_to_device_and_astype(device):
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).to(device).astype(np.float64)
    assert all(p.device == device and p.dtype == np.float64 for p in model.parameters())
    assert all(ts.Tensor(b).device == device and b.dtype == np.float64 for _, b in model.named_buffers())
    out = model(ts.Tensor(np.ones((4, 3)), device=device))
    assert out.device == device and out.dtype == np.float64
    assert model.to("cpu") is model and all(p.device == "cpu" for p in model.parameters())
    with pytest.raises(ValueError, match="device must be one of"):
        model.to("tpu")
