"""bench/diag/diag_colour_gap.py: the colour transfers give the reference's statistics."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "diag"))
from diag_colour_gap import covariance, per_channel  # noqa: E402


def _images():
    rng = np.random.default_rng(3)
    x = 0.3 + 0.1 * rng.random((40, 50, 3))
    mix = np.array([[0.8, 0.1, 0.1], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6]])
    ref = 0.5 + 0.15 * (rng.standard_normal((40, 50, 3)) @ mix.T)
    return x, np.clip(ref, 0, 1)


def test_per_channel_takes_the_reference_means_and_stds():
    x, ref = _images()
    out = per_channel(x, ref)
    np.testing.assert_allclose(out.mean((0, 1)), ref.mean((0, 1)), atol=5e-3)  # clipping moves it a little
    np.testing.assert_allclose(out.std((0, 1)), ref.std((0, 1)), atol=5e-3)


def test_covariance_takes_the_reference_covariance_and_keeps_an_image_that_has_it():
    x, ref = _images()
    out = covariance(x, ref)
    np.testing.assert_allclose(np.cov(out.reshape(-1, 3).T), np.cov(ref.reshape(-1, 3).T), atol=2e-3)
    np.testing.assert_allclose(covariance(ref, ref), ref, atol=1e-6)
