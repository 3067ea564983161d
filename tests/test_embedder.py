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


@pytest.mark.parametrize("include_input", [True, False])
def test_gradient_matches_the_analytic_derivative(include_input):
    """d/dx of sum(g * enc(x)) = g_x + sum_l 2^l (g_sin cos(2^l x) - g_cos sin(2^l x))."""
    rng = np.random.default_rng(5)
    n_freqs = 4
    x = rng.uniform(-1.0, 1.0, size=(6, 3))
    enc = PositionalEncoding(n_freqs, include_input=include_input)
    g = rng.standard_normal((6, enc.out_dim))
    xv = jt.array(x.astype(np.float32))
    (gx,) = jt.grad((enc(xv) * jt.array(g.astype(np.float32))).sum(), [xv])
    want = g[:, :3].copy() if include_input else np.zeros_like(x)
    off = 3 if include_input else 0
    for k in range(n_freqs):
        f = 2.0 ** k
        g_sin, g_cos = g[:, off + 6 * k: off + 6 * k + 3], g[:, off + 6 * k + 3: off + 6 * k + 6]
        want += f * (g_sin * np.cos(f * x) - g_cos * np.sin(f * x))
    np.testing.assert_allclose(gx.numpy(), want, rtol=1e-4, atol=1e-4)
    # and against finite differences of the forward pass itself
    eps, d = 1e-3, np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        f_hi = (enc(jt.array(hi.astype(np.float32))).numpy().astype(np.float64) * g).sum()
        f_lo = (enc(jt.array(lo.astype(np.float32))).numpy().astype(np.float64) * g).sum()
        d[idx] = (f_hi - f_lo) / (2 * eps)
    np.testing.assert_allclose(gx.numpy(), d, rtol=2e-2, atol=2e-2)


def test_high_frequencies_stay_accurate_far_from_zero():
    """2^9 x reaches hundreds of radians: sin/cos must still match NumPy (float32 argument)."""
    enc = PositionalEncoding(10)
    x = np.linspace(-1.0, 1.0, 101, dtype=np.float32).reshape(-1, 1).repeat(3, 1)
    out = enc(jt.array(x)).numpy()
    np.testing.assert_allclose(out, numpy_encoding(x.astype(np.float64), 10), atol=1e-5)


def test_values_are_float64_sin_cos_rounded_to_float32_up_to_16_frequencies():
    """The CPU kernel takes 2^l x by the double-angle formulas: after 15 doublings its values are
    still NumPy's float64 sin/cos rounded to float32 (to one rounding step), far from 0 too; and its
    gradient is the analytic one."""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-1.5, 1.5, (500, 3)), rng.uniform(-40, 40, (500, 3))]).astype(np.float32)
    enc = PositionalEncoding(16)
    want = numpy_encoding(x.astype(np.float64), 16).astype(np.float32)
    np.testing.assert_allclose(enc(jt.array(x)).numpy(), want, rtol=0, atol=1.2e-7)
    g = rng.standard_normal((len(x), enc.out_dim)).astype(np.float32)
    xv = jt.array(x)
    (gx,) = jt.grad((enc(xv) * jt.array(g)).sum(), [xv])
    x64, want_g = x.astype(np.float64), g[:, :3].astype(np.float64)
    for k in range(16):
        f = 2.0 ** k
        want_g += f * (g[:, 3 + 6 * k: 6 + 6 * k] * np.cos(f * x64) - g[:, 6 + 6 * k: 9 + 6 * k] * np.sin(f * x64))
    np.testing.assert_allclose(gx.numpy(), want_g, rtol=1e-6, atol=1e-3)


def test_one_kernel_per_encoding():
    enc = PositionalEncoding(10)
    x = jt.array(np.random.rand(64, 3).astype(np.float32))
    enc(x).sync()  # compile
    jt.sync_all(True)
    jt.profiler.start(0, 0)
    enc(jt.array(np.random.rand(64, 3).astype(np.float32))).sync()
    jt.sync_all(True)
    jt.profiler.stop()
    rows = jt.profiler.report()[1:]
    count = sum(int(r[2]) for r in rows if "code" in r[0])
    assert count == 1, [r[0][:60] for r in rows]
