"""Koch et al.'s affine augmentation: exact special cases, statistics of the random maps, NumPy vs CuPy."""
import numpy as np
import pytest
from conftest import on

from tinysiam.data.augment import affine_augment, affine_warp, random_affine
from tinysiam.engine.backend import gpu_available, to_numpy

IDENTITY = dict(rotation=(0, 0), shear=(0, 0), scale=(1, 1), translation=(0, 0))


def batch(n=4, channels=1, h=9, w=7, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random((n, channels, h, w)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_components_off_returns_the_input_exactly(device, dtype):
    (images,) = on(device, batch(dtype=dtype))
    for out in (affine_augment(images, np.random.default_rng(0), probability=0),
                affine_augment(images, np.random.default_rng(0), probability=1, **IDENTITY)):
        assert out.dtype == dtype and out.shape == images.shape and type(out) is type(images)
        np.testing.assert_array_equal(to_numpy(out), to_numpy(images))


@pytest.mark.parametrize("shift", [1, -2])
def test_integer_translation_moves_pixels_and_fills_zeros(device, shift):
    images = batch(channels=2)
    (moved,) = on(device, images)
    moved = to_numpy(affine_augment(moved, np.random.default_rng(0), probability=1,
                                    **dict(IDENTITY, translation=(shift, shift))))
    expected = np.zeros_like(images)
    # content moves by +shift along x (columns) and along y (rows)
    if shift > 0:
        expected[:, :, shift:, shift:] = images[:, :, :-shift, :-shift]
    else:
        expected[:, :, :shift, :shift] = images[:, :, -shift:, -shift:]
    np.testing.assert_array_equal(moved, expected)


def test_half_pixel_shift_averages_neighbours():
    images = batch(n=1, h=5, w=6)
    out = affine_warp(images, np.eye(2)[None], np.array([[0.5, 0.0]]))  # half a pixel along x
    np.testing.assert_allclose(out[..., 1:], (images[..., 1:] + images[..., :-1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out[..., 0], images[..., 0] / 2, rtol=1e-6)  # the other half is outside: 0


def test_quarter_turn_about_the_centre():
    images = batch(n=2, channels=3, h=8, w=8)
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])  # (x, y) -> (-y, x); y points down
    out = affine_warp(images, np.stack([quarter, quarter]), np.zeros((2, 2)))
    np.testing.assert_array_equal(out, np.rot90(images, k=-1, axes=(2, 3)))


def test_random_maps_have_koch_ranges_and_half_of_each_component_on():
    n = 4000
    matrices, shifts = random_affine(n, np.random.default_rng(1))
    assert matrices.shape == (n, 2, 2) and shifts.shape == (n, 2)
    assert np.abs(shifts).max() <= 2
    np.testing.assert_allclose((shifts != 0).mean(axis=0), 0.5, atol=0.03)  # x and y switched on independently
    np.testing.assert_allclose(((shifts[:, 0] != 0) & (shifts[:, 1] != 0)).mean(), 0.25, atol=0.03)
    rotations, _ = random_affine(n, np.random.default_rng(2), **dict(IDENTITY, rotation=(-10, 10)))
    angles = np.degrees(np.arctan2(rotations[:, 1, 0], rotations[:, 0, 0]))
    assert np.abs(angles).max() <= 10 and np.abs(angles).max() > 9.9
    np.testing.assert_allclose((angles != 0).mean(), 0.5, atol=0.03)
    scales, _ = random_affine(n, np.random.default_rng(3), **dict(IDENTITY, scale=(0.8, 1.2)))
    np.testing.assert_array_equal(scales[:, [0, 1], [1, 0]], 0)
    diagonal = scales[:, [0, 1], [0, 1]]
    assert diagonal.min() >= 0.8 and diagonal.max() <= 1.2
    np.testing.assert_allclose((diagonal != 1).mean(axis=0), 0.5, atol=0.03)
    shears, _ = random_affine(n, np.random.default_rng(4), **dict(IDENTITY, shear=(-0.3, 0.3)))
    np.testing.assert_array_equal(shears[:, [0, 1], [0, 1]], 1)
    assert np.abs(shears[:, [0, 1], [1, 0]]).max() <= 0.3


def test_seeded_and_shape_preserving(device):
    (images,) = on(device, batch(n=6, channels=3, h=12, w=10))
    a = affine_augment(images, np.random.default_rng(5))
    b = affine_augment(images, np.random.default_rng(5))
    c = affine_augment(images, np.random.default_rng(6))
    assert a.shape == images.shape and a.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    assert not np.array_equal(to_numpy(a), to_numpy(c))
    assert 0 <= float(a.min()) and float(a.max()) <= 1  # bilinear weights are convex: no overshoot


@pytest.mark.skipif(not gpu_available(), reason="CuPy with a CUDA device is not available")
def test_gpu_matches_numpy():
    images = batch(n=5, h=16, w=16)
    (moved,) = on("gpu", images)
    np.testing.assert_allclose(to_numpy(affine_augment(moved, np.random.default_rng(7))),
                               affine_augment(images, np.random.default_rng(7)), atol=1e-6)


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"images must have shape \(N, C, H, W\)"):
        affine_augment(np.zeros((2, 5, 5), np.float32), rng)
    with pytest.raises(TypeError, match="floating point"):
        affine_augment(np.zeros((2, 1, 5, 5), np.uint8), rng)
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        affine_augment(batch(), 0)
    with pytest.raises(ValueError, match="probability must be in"):
        affine_augment(batch(), rng, probability=1.5)
    with pytest.raises(ValueError, match=r"rotation must be a range"):
        affine_augment(batch(), rng, rotation=(10, -10))
    with pytest.raises(ValueError, match="scale must be positive"):
        affine_augment(batch(), rng, scale=(0, 1))
    with pytest.raises(ValueError, match=r"matrices must be \(4, 2, 2\)"):
        affine_warp(batch(), np.zeros((3, 2, 2)), np.zeros((4, 2)))
