"""Weight initialisers. Each returns a float32 NumPy array of ``shape``.

``fan_in`` is the number of inputs of one output unit (in_features, or
in_channels * KH * KW for a convolution); ``fan_out`` likewise for outputs.
"""
import numpy as np

_default_rng = np.random.default_rng(0)


def seed(value):
    """Reseed the generator used by layers built without ``rng=`` (reproducible runs)."""
    global _default_rng
    _default_rng = np.random.default_rng(value)


def get_rng(rng=None):
    """``rng`` itself, or the shared seeded generator when it is None."""
    return _default_rng if rng is None else rng


def he_normal(shape, fan_in, rng=None):
    """N(0, 2 / fan_in): keeps the variance of ReLU activations constant (He et al. 2015)."""
    return (get_rng(rng).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def he_uniform(shape, fan_in, rng=None):
    """U(-a, a) with a = sqrt(6 / fan_in): the same variance as he_normal."""
    limit = np.sqrt(6.0 / fan_in)
    return get_rng(rng).uniform(-limit, limit, shape).astype(np.float32)


def glorot_uniform(shape, fan_in, fan_out, rng=None):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010)."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return get_rng(rng).uniform(-limit, limit, shape).astype(np.float32)


def glorot_normal(shape, fan_in, fan_out, rng=None):
    """N(0, 2 / (fan_in + fan_out))."""
    return (get_rng(rng).standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(np.float32)


def koch_conv(shape, rng=None):
    """Koch et al. 2015, convolution weights: N(0, 1e-2)."""
    return (get_rng(rng).standard_normal(shape) * 1e-2).astype(np.float32)


def koch_dense(shape, rng=None):
    """Koch et al. 2015, dense weights: N(0, 2e-1)."""
    return (get_rng(rng).standard_normal(shape) * 2e-1).astype(np.float32)


def koch_bias(shape, rng=None):
    """Koch et al. 2015, biases: N(0.5, 1e-2)."""
    return (0.5 + get_rng(rng).standard_normal(shape) * 1e-2).astype(np.float32)


def weight_and_bias(init, weight_shape, fan_in, fan_out, dense, rng=None):
    """Initial (weight, bias) arrays for the scheme named ``init``: "he", "glorot" or "koch"."""
    n_out = weight_shape[0]
    if init == "he":
        return he_normal(weight_shape, fan_in, rng), np.zeros(n_out, np.float32)
    if init == "glorot":
        return glorot_uniform(weight_shape, fan_in, fan_out, rng), np.zeros(n_out, np.float32)
    if init == "koch":
        weight = koch_dense(weight_shape, rng) if dense else koch_conv(weight_shape, rng)
        return weight, koch_bias((n_out,), rng)
    raise ValueError(f"init must be 'he', 'glorot' or 'koch', got {init!r}")
