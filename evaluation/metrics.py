"""Image metrics in NumPy/SciPy: PSNR, SSIM, masked RMSE. Images are float in [0, 1], [H,W] or [H,W,C].

SSIM is the standard Gaussian-window SSIM (Wang et al. 2004): 11x11 window with sigma 1.5,
K1 = 0.01, K2 = 0.03, data range 1, population (not sample) variances. Border handling is
'valid': the SSIM map is averaged only over pixels whose whole 11x11 window lies inside the
image (the map is cropped by 5 pixels on each side, like scikit-image's mean), so padding never
enters the result. Colour images: SSIM per channel, then the mean over channels.
"""
import numpy as np
from scipy.ndimage import gaussian_filter

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


class MetricInputError(ValueError):
    """Images of different or unusable shapes."""


def _pair(a, b, name):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim not in (2, 3):
        raise MetricInputError(f"{name}: expected two images of the same shape [H,W] or [H,W,C], "
                               f"got {a.shape} and {b.shape}")
    return a, b


def _pixel_mask(mask, shape, name):
    """[H,W] bool mask -> broadcastable over the image's channels (None: all pixels)."""
    if mask is None:
        return np.ones(shape[:2], bool)
    mask = np.asarray(mask).astype(bool)
    if mask.shape != tuple(shape[:2]):
        raise MetricInputError(f"{name}: mask must be [H,W] = {tuple(shape[:2])}, got {mask.shape}")
    return mask


def mse(a, b, mask=None):
    """Mean squared error over the masked pixels (all channels); nan if the mask is empty."""
    a, b = _pair(a, b, "mse")
    m = _pixel_mask(mask, a.shape, "mse")
    if not m.any():
        return float("nan")
    return float(np.mean((a - b)[m] ** 2))


def psnr(a, b, mask=None):
    """PSNR in dB for images in [0, 1] (peak 1): -10 log10(MSE); inf for identical images."""
    err = mse(a, b, mask)
    if err == 0:
        return float("inf")
    return float(-10.0 * np.log10(err))


def rmse(a, b, mask=None):
    """Root mean squared error over the masked pixels (all channels); nan if the mask is empty."""
    return float(np.sqrt(mse(a, b, mask)))


def _gaussian(x):
    # truncate chosen so the window radius is 5: int(truncate * sigma + 0.5) = 5 -> 11 taps
    return gaussian_filter(x, SSIM_SIGMA, mode="reflect", truncate=(SSIM_WINDOW // 2) / SSIM_SIGMA)


def ssim_map(a, b):
    """SSIM map of two single-channel images [H,W], cropped to the 'valid' region [H-10, W-10]."""
    c1 = (SSIM_K1 * 1.0) ** 2
    c2 = (SSIM_K2 * 1.0) ** 2
    mu_a, mu_b = _gaussian(a), _gaussian(b)
    var_a = _gaussian(a * a) - mu_a ** 2
    var_b = _gaussian(b * b) - mu_b ** 2
    cov = _gaussian(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    r = SSIM_WINDOW // 2
    return s[r:-r, r:-r]


def ssim(a, b):
    """Mean SSIM of two images [H,W] or [H,W,C] in [0, 1] (channel-averaged); needs H, W >= 11."""
    a, b = _pair(a, b, "ssim")
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise MetricInputError(f"ssim: images must be at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {a.shape}")
    if a.ndim == 2:
        return float(ssim_map(a, b).mean())
    return float(np.mean([ssim_map(a[..., c], b[..., c]).mean() for c in range(a.shape[2])]))
