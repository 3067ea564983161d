"""pipeline/stylized_render.py: the latent schedule of --style_interp (the rendering itself is
tested end to end in tests/test_pipeline.py)."""
import numpy as np
import pytest

from pipeline.stylized_render import interpolated_latents, interpolation_steps


def test_two_styles_go_linearly_from_the_first_to_the_second():
    a, b = np.zeros(4), np.arange(4.0)
    z = interpolated_latents([a, b], 5)
    np.testing.assert_allclose(z, [a + t * (b - a) for t in (0, 0.25, 0.5, 0.75, 1)], atol=1e-7)


def test_more_styles_are_passed_through_at_evenly_spaced_frames():
    mus = np.array([[0.0], [10.0], [4.0]])
    z = interpolated_latents(mus, 9)[:, 0]  # keys at frames 0, 4, 8
    np.testing.assert_allclose(z, [0, 2.5, 5, 7.5, 10, 8.5, 7, 5.5, 4], atol=1e-6)


def test_single_frame_and_bad_inputs():
    np.testing.assert_allclose(interpolated_latents([[1.0], [3.0]], 1), [[1.0]])
    with pytest.raises(ValueError, match=">= 2 codes"):
        interpolated_latents([[1.0]], 4)


def test_interpolation_steps_name_the_key_left_and_the_way_to_the_next():
    """The per-style grids' blend follows the codes': frame i is (1 - a) key k + a key k+1."""
    k, a = interpolation_steps(3, 9)
    np.testing.assert_array_equal(k, [0, 0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(a, [0, 0.25, 0.5, 0.75, 0, 0.25, 0.5, 0.75, 1])
    with pytest.raises(ValueError, match=">= 2 codes"):
        interpolation_steps(1, 3)
