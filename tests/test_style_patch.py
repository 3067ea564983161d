"""pipeline/style_patch.py: the texture window's pixels, its layout, and the texture term
against a NumPy reference of AdaIN's style loss (channel means and unbiased stds per tap)."""
import jittor as jt
import numpy as np
import pytest

from pipeline.style_patch import as_image, patch_pixels, patch_texture_loss


class TwoTapEncoder:
    """Taps: the image itself and its 2x2 average pooling (a stand-in for VGG's taps)."""

    def __call__(self, x):
        b, c, h, w = x.shape
        pooled = x.reshape(b, c, h // 2, 2, w // 2, 2).mean(dims=(3, 5))
        return [x * 1.0, pooled]


def stats_np(img):
    flat = img.reshape(img.shape[0], -1).astype(np.float64)
    return flat.mean(1), np.sqrt(flat.var(1, ddof=1) + 1e-5)


def texture_loss_np(a, b):
    """a, b [C,H,W]: sum over the two taps of MSE(means) + MSE(stds)."""
    def pool(x):
        return x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2).mean(axis=(2, 4))
    total = 0.0
    for ta, tb in ((a, b), (pool(a), pool(b))):
        (ma, sa), (mb, sb) = stats_np(ta), stats_np(tb)
        total += ((ma - mb) ** 2).mean() + ((sa - sb) ** 2).mean()
    return total


def test_patch_pixels_is_one_window_of_one_view_in_row_major_order():
    rng = np.random.default_rng(0)
    for _ in range(20):
        s, v, r, c = patch_pixels(rng, 3, 5, 12, 17, 4)
        assert len(set(s)) == 1 and len(set(v)) == 1 and 0 <= s[0] < 3 and 0 <= v[0] < 5
        assert r.min() >= 0 and r.max() < 12 and c.min() >= 0 and c.max() < 17
        np.testing.assert_array_equal(r.reshape(4, 4), r[0] + np.arange(4)[:, None].repeat(4, 1))
        np.testing.assert_array_equal(c.reshape(4, 4), c[0] + np.arange(4)[None, :].repeat(4, 0))


def test_a_window_larger_than_the_targets_is_refused():
    with pytest.raises(ValueError, match="--style_patch 16 is larger than the targets"):
        patch_pixels(np.random.default_rng(0), 1, 1, 12, 30, 16)


def test_as_image_puts_window_pixel_ij_at_row_i_column_j():
    p = 3
    rgb = np.arange(p * p * 3, dtype=np.float32).reshape(p * p, 3)
    img = as_image(jt.array(rgb), p).numpy()
    assert img.shape == (1, 3, p, p)
    for i in range(p):
        for j in range(p):
            np.testing.assert_array_equal(img[0, :, i, j], rgb[i * p + j])


def test_texture_loss_matches_numpy_and_is_zero_for_the_target_itself():
    rng = np.random.default_rng(1)
    p = 4
    a = rng.uniform(0, 1, (p * p, 3)).astype(np.float32)
    b = rng.uniform(0.3, 0.6, (p * p, 3)).astype(np.float32)
    enc = TwoTapEncoder()
    got = patch_texture_loss(enc, jt.array(a), jt.array(b), p).item()
    ref = texture_loss_np(a.reshape(p, p, 3).transpose(2, 0, 1), b.reshape(p, p, 3).transpose(2, 0, 1))
    assert got == pytest.approx(ref, rel=1e-4)
    assert patch_texture_loss(enc, jt.array(b), jt.array(b), p).item() == pytest.approx(0.0, abs=1e-10)


def test_texture_loss_pulls_a_flat_window_towards_the_targets_contrast():
    """Gradient descent on a blurred (flat) window raises its spread towards the target's."""
    rng = np.random.default_rng(2)
    p = 4
    target = jt.array(rng.uniform(0, 1, (p * p, 3)).astype(np.float32))
    x = jt.array(np.full((p * p, 3), 0.5, np.float32) + rng.normal(0, 0.01, (p * p, 3)).astype(np.float32))
    enc = TwoTapEncoder()
    first = patch_texture_loss(enc, x, target, p).item()
    for _ in range(100):
        loss = patch_texture_loss(enc, x, target, p)
        x = jt.array((x - 5.0 * jt.grad(loss, x)).numpy())
    assert patch_texture_loss(enc, x, target, p).item() < 0.2 * first
    assert x.numpy().std() > 5 * 0.01
