"""backend/conv.py: the convolution's kernels (window columns, reflection padding) against NumPy."""
import jittor as jt
import numpy as np
import pytest

from backend.conv import reflect_pad2d, window_columns


@pytest.mark.parametrize("k, offset", [(3, 0), (3, 2), (1, 0)])
def test_window_columns_matches_numpy(k, offset):
    x = np.random.randn(2, 3, 5, 6).astype(np.float32)
    ho, wo = (5 - k + 1, 6 - k + 1) if offset == 0 else (5, 6)
    out = window_columns(jt.array(x), k, ho, wo, offset).numpy()
    xp = np.pad(x, ((0, 0), (0, 0), (offset, k), (offset, k)))  # zeros outside the image
    ref = np.zeros((3 * k * k, 2 * ho * wo), np.float32)
    for c in range(3):
        for i in range(k):
            for j in range(k):
                ref[(c * k + i) * k + j] = xp[:, c, i:i + ho, j:j + wo].reshape(-1)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("shape, p", [((2, 3, 5, 7), 1), ((1, 2, 4, 3), 2), ((1, 1, 2, 2), 1)])
def test_reflect_pad2d_matches_numpy_with_gradient(shape, p):
    x = np.random.randn(*shape).astype(np.float32)
    xv = jt.array(x)
    out = reflect_pad2d(xv, p)
    pad = ((0, 0), (0, 0), (p, p), (p, p))
    np.testing.assert_array_equal(out.numpy(), np.pad(x, pad, mode="reflect"))
    # gradient = transpose of the padding as a linear map, built column by column in NumPy
    w = np.random.randn(*out.shape).astype(np.float32)
    grad = jt.grad((out * jt.array(w)).sum(), xv).numpy()
    expected = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = 1
        expected[idx] = (np.pad(e, pad, mode="reflect") * w).sum()
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)


def test_reflect_pad2d_rejects_too_much_padding():
    with pytest.raises(ValueError, match="reflection padding 3"):
        reflect_pad2d(jt.zeros((1, 1, 3, 8)), 3)
