"""Layers and modules: gradients of inputs and parameters, modes, state, errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import nn
from tinysiam.catalogue.layers import layer_check
from tinysiam.gradcheck import gradcheck

FAST = settings(max_examples=10, deadline=None)


def check_layer(layer, x, train=True):
    check = layer_check("layer", layer, x, train)
    gradcheck(check.fn, *check.inputs)


@FAST
@given(n=st.integers(1, 4), fin=st.integers(1, 5), fout=st.integers(1, 4), seed=st.integers(0, 99))
def test_linear(n, fin, fout, seed):
    rng = np.random.default_rng(seed)
    check_layer(nn.Linear(fin, fout, rng=rng), rng.standard_normal((n, fin)))


@FAST
@given(n=st.integers(1, 3), c=st.integers(1, 3), oc=st.integers(1, 3), k=st.integers(1, 3), stride=st.integers(1, 2),
       padding=st.integers(0, 1), seed=st.integers(0, 99))
def test_conv2d_layer(n, c, oc, k, stride, padding, seed):
    rng = np.random.default_rng(seed)
    check_layer(nn.Conv2d(c, oc, k, stride=stride, padding=padding, rng=rng), rng.standard_normal((n, c, k + 2, k + 1)))


@FAST
@given(n=st.integers(2, 5), c=st.integers(1, 3), seed=st.integers(0, 99), train=st.booleans())
def test_batchnorm(n, c, seed, train):
    rng = np.random.default_rng(seed)
    layer1, layer2 = nn.BatchNorm1d(c), nn.BatchNorm2d(c)
    for layer in (layer1, layer2):
        layer.running_mean = rng.standard_normal(c).astype(np.float32)
        layer.running_var = rng.uniform(0.5, 2, c).astype(np.float32)
    check_layer(layer1, rng.standard_normal((n, c)), train)
    check_layer(layer2, rng.standard_normal((n, c, 2, 3)), train)


def test_batchnorm_statistics_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 4, 4)).astype(np.float32) * 2 + 1
    layer = nn.BatchNorm2d(3)
    y = layer(ts.Tensor(x)).numpy()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y, (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), atol=1e-5)
    np.testing.assert_allclose(layer.running_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * var * 128 / 127, rtol=1e-5)
    layer.eval()
    np.testing.assert_allclose(layer(ts.Tensor(x)).numpy(),
                               (x - layer.running_mean[:, None, None]) / np.sqrt(layer.running_var[:, None, None] + 1e-5),
                               atol=1e-5)


def test_dropout_scales_in_training_and_is_identity_in_eval():
    layer = nn.Dropout(0.5, rng=np.random.default_rng(0))
    x = ts.Tensor(np.ones((100, 100), np.float32))
    y = layer(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0} and abs((y == 0).mean() - 0.5) < 0.02
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.0)


def test_parameter_names_modes_and_state_dict_round_trip():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 1))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias"]
    model.eval()
    assert not any(m.training for m in model.modules())
    state = model.state_dict()
    assert "1.running_mean" in state and "1.running_mean" not in names
    other = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(2, 1))
    other.load_state_dict(state)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_load_state_dict_reports_names_and_shapes():
    model = nn.Linear(3, 2)
    with pytest.raises(KeyError, match="missing \\['bias'\\]"):
        model.load_state_dict({"weight": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"weight has shape \(3, 3\) in the checkpoint but \(2, 3\)"):
        model.load_state_dict({"weight": np.zeros((3, 3)), "bias": np.zeros(2)})


def test_layer_input_errors_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match=r"Linear\(3, 2\).*\(4, 5\)"):
        nn.Linear(3, 2)(ts.Tensor(np.ones((4, 5), np.float32)))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4\).*\(1, 1, 8, 8\)"):
        nn.Conv2d(3, 4, 3)(ts.Tensor(np.ones((1, 1, 8, 8), np.float32)))
    with pytest.raises(TypeError, match="Linear: input has dtype int64"):
        nn.Linear(3, 2)(ts.Tensor(np.ones((1, 3), np.int64)))


def test_initialisers_have_the_stated_statistics():
    rng = np.random.default_rng(0)
    assert nn.init.he_normal((400, 500), fan_in=500, rng=rng).std() == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    limit = np.sqrt(6 / 900)
    g = nn.init.glorot_uniform((400, 500), 500, 400, rng=rng)
    assert g.max() <= limit and g.min() >= -limit and g.std() == pytest.approx(limit / np.sqrt(3), rel=0.02)
    assert nn.init.koch_conv((100, 1000), rng).std() == pytest.approx(1e-2, rel=0.02)
    assert nn.init.koch_dense((100, 1000), rng).std() == pytest.approx(0.2, rel=0.02)
    assert nn.init.koch_bias((100000,), rng).mean() == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="init must be"):
        nn.Linear(2, 2, init="xavier")


def test_module_to_device_and_astype(device):
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)).to(device).astype(np.float64)
    assert all(p.device == device and p.dtype == np.float64 for p in model.parameters())
    out = model(ts.Tensor(np.ones((4, 3)), device=device))
    assert out.device == device
