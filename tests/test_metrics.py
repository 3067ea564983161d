"""evaluation/metrics.py against known values and an independent SSIM written with convolve2d."""
import numpy as np
import pytest
from scipy.signal import convolve2d

from evaluation.metrics import MetricInputError, mse, psnr, rmse, ssim


def ssim_reference(a, b):
    """Direct formula: explicit normalised 11x11 Gaussian (sigma 1.5), 'valid' convolution."""
    x = np.arange(11) - 5.0
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    vals = []
    for c in range(a.shape[2]):
        p, q = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        blur = lambda z: convolve2d(z, g, mode="valid")  # noqa: E731
        mp, mq = blur(p), blur(q)
        vp, vq, cpq = blur(p * p) - mp ** 2, blur(q * q) - mq ** 2, blur(p * q) - mp * mq
        s = (2 * mp * mq + c1) * (2 * cpq + c2) / ((mp ** 2 + mq ** 2 + c1) * (vp + vq + c2))
        vals.append(s.mean())
    return float(np.mean(vals))


def test_psnr_of_a_known_offset():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.2, 0.8, (12, 15, 3))
    assert psnr(a, a + 0.1) == pytest.approx(20.0, abs=1e-9)
    assert psnr(a, a - 0.01) == pytest.approx(40.0, abs=1e-9)
    assert psnr(a, a) == float("inf")
    assert mse(a, a + 0.1) == pytest.approx(0.01)


def test_masked_psnr_and_rmse_ignore_pixels_outside_the_mask():
    a = np.zeros((6, 8, 3))
    b = a.copy()
    b[:, :4] += 0.1
    b[:, 4:] += 0.5
    mask = np.zeros((6, 8), bool)
    mask[:, :4] = True
    assert rmse(a, b, mask) == pytest.approx(0.1)
    assert psnr(a, b, mask) == pytest.approx(20.0)
    assert rmse(a, b) == pytest.approx(np.sqrt((0.01 + 0.25) / 2))
    assert np.isnan(rmse(a, b, np.zeros((6, 8), bool)))


def test_ssim_of_identical_images_is_one():
    x = np.random.default_rng(1).uniform(0, 1, (20, 24, 3))
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_direct_valid_convolution():
    rng = np.random.default_rng(2)
    a = rng.uniform(0, 1, (23, 30, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    value = ssim(a, b)
    assert 0.3 < value < 0.99
    assert value == pytest.approx(ssim_reference(a, b), abs=1e-10)
    smooth = np.cumsum(np.cumsum(rng.uniform(0, 1, (26, 21, 3)), 0), 1)
    smooth /= smooth.max()
    assert ssim(smooth, smooth ** 1.3) == pytest.approx(ssim_reference(smooth, smooth ** 1.3), abs=1e-10)


def test_ssim_of_constant_images_is_the_luminance_term():
    a, b = np.full((16, 16, 3), 0.3), np.full((16, 16, 3), 0.6)
    c1 = 0.01 ** 2
    expected = (2 * 0.3 * 0.6 + c1) / (0.3 ** 2 + 0.6 ** 2 + c1)  # variances are 0
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert ssim(a[..., 0], b[..., 0]) == pytest.approx(expected, abs=1e-12)


def test_bad_shapes_raise():
    with pytest.raises(MetricInputError, match="same shape"):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))
    with pytest.raises(MetricInputError, match="at least 11x11"):
        ssim(np.zeros((8, 20, 3)), np.zeros((8, 20, 3)))
    with pytest.raises(MetricInputError, match="mask"):
        rmse(np.zeros((4, 4, 3)), np.zeros((4, 4, 3)), np.ones((4, 5), bool))
