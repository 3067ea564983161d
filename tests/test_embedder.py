"""models/embedder.py: positional encoding vs NumPy, nerf-pytorch order and sizes."""
import jittor as jt
import numpy as np
import pytest

from models.embedder import PositionalEncoding


def numpy_encoding(x, n_freqs, include_input=True):
    """nerf-pytorch's Embedder: [x] + for f in 2^0..2^(L-1): sin(f x), cos(f x)."""
    parts = [x] if include_input else []
    for k in range(n_freqs):
        parts += [np.sin(x * 2.0 ** k), np.cos(x * 2.0 ** k)]
    return np.concatenate(parts, axis=-1)


@pytest.mark.parametrize("n_freqs,expected_dim", [(10, 63), (4, 27), (0, 3)])
def test_out_dim_and_values(n_freqs, expected_dim):
    enc = PositionalEncoding(n_freqs)
    assert enc.out_dim == expected_dim
    x = np.random.uniform(-1.5, 1.5, size=(2, 5, 3)).astype(np.float32)
    out = enc(jt.array(x)).numpy()
    assert out.shape == (2, 5, expected_dim)
    # float32 sin/cos of arguments up to 2^9 * 1.5: allow a few ulps of the argument
    np.testing.assert_allclose(out, numpy_encoding(x.astype(np.float64), n_freqs), atol=2e-4)


def test_order_on_a_known_point():
    enc = PositionalEncoding(2)
    x = np.array([[0.5, -0.25, 1.0]], np.float32)
    out = enc(jt.array(x)).numpy()[0]
    np.testing.assert_allclose(out[:3], x[0])
    np.testing.assert_allclose(out[3:6], np.sin(x[0]), rtol=1e-6)       # sin(2^0 x)
    np.testing.assert_allclose(out[6:9], np.cos(x[0]), rtol=1e-6)       # cos(2^0 x)
    np.testing.assert_allclose(out[9:12], np.sin(2 * x[0]), rtol=1e-6)  # sin(2^1 x)
    np.testing.assert_allclose(out[12:15], np.cos(2 * x[0]), rtol=1e-6)


def test_without_input_and_not_a_parameter():
    enc = PositionalEncoding(3, include_input=False)
    assert enc.out_dim == 18
    x = np.random.rand(4, 3).astype(np.float32)
    np.testing.assert_allclose(enc(jt.array(x)).numpy(), numpy_encoding(x, 3, False), atol=1e-5)
    assert enc.parameters() == [] and enc.state_dict() == {}


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_freqs"):
        PositionalEncoding(-1)
    with pytest.raises(ValueError, match="last dim 3"):
        PositionalEncoding(2)(jt.zeros((4, 2)))
