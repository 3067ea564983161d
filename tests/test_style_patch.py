"""pipeline/style_patch.py: the texture window's pixels, its layout, and the texture term
against a NumPy reference of AdaIN's style loss (channel means and unbiased stds per tap)."""
import jittor as jt
import numpy as np
import pytest

from pipeline.style_patch import (as_image, patch_nn_loss, patch_pixels, patch_split_loss, patch_style_image_loss,
                                  patch_texture_loss, style_image_features, style_image_stats, target_window_losses,
                                  window_target, WindowBalance)


class TwoTapEncoder:
    """Taps: the image itself and its 2x2 average pooling (a stand-in for VGG's taps)."""

    def __call__(self, x):
        b, c, h, w = x.shape
        pooled = x.reshape(b, c, h // 2, 2, w // 2, 2).mean(dims=(3, 5))
        return [x * 1.0, pooled]

    def encode(self, x):
        return self(x)[-1]


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


def test_patch_pixels_is_one_turned_window_of_one_view_in_row_major_order():
    rng = np.random.default_rng(0)
    angles = []
    for _ in range(20):
        s, v, r, c = patch_pixels(rng, 3, 5, 12, 17, 4)
        assert len(set(s)) == 1 and len(set(v)) == 1 and 0 <= s[0] < 3 and 0 <= v[0] < 5
        assert r.min() >= 0 and r.max() <= 11 and c.min() >= 0 and c.max() <= 16
        r, c = r.reshape(4, 4), c.reshape(4, 4)
        along = np.stack([np.diff(r, axis=1), np.diff(c, axis=1)], -1)   # one step along a window row
        down = np.stack([np.diff(r, axis=0), np.diff(c, axis=0)], -1)    # one step down a column
        np.testing.assert_allclose(np.linalg.norm(along, axis=-1), 1.0, atol=1e-9)
        np.testing.assert_allclose(np.linalg.norm(down, axis=-1), 1.0, atol=1e-9)
        np.testing.assert_allclose((along[:-1] * down[:, :-1]).sum(-1), 0.0, atol=1e-9)  # square
        np.testing.assert_allclose(along, np.broadcast_to(along[0, 0], along.shape), atol=1e-9)  # straight rows
        angles.append(np.arctan2(along[0, 0, 0], along[0, 0, 1]))
    assert np.ptp(angles) > 1.0  # the turn varies from window to window


def test_patch_pixels_draws_the_style_by_its_share():
    """Without shares the draws are those of before (one integer for the style, one for the view);
    with shares each style comes up about that often, one of share 0 never."""
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(5):
        s, v, r, c = patch_pixels(rng, 3, 5, 12, 17, 4)
        assert (s[0], v[0]) == (ref.integers(3), ref.integers(5))
        ref.uniform(size=3)  # the centre and the turn
    rng = np.random.default_rng(4)
    drawn = np.array([patch_pixels(rng, 3, 5, 12, 17, 4, shares=[0.0, 0.25, 0.75])[0][0] for _ in range(2000)])
    counts = np.bincount(drawn, minlength=3) / len(drawn)
    assert counts[0] == 0 and abs(counts[1] - 0.25) < 0.04 and abs(counts[2] - 0.75) < 0.04


def test_target_window_losses_are_the_targets_distance_from_each_painting():
    """target_window_losses: the mean texture loss of random target windows against each style
    image's statistics (TwoTapEncoder: the image and its 2x2 pooling).  Flat targets at v against a
    flat image at 0.5: (v - 0.5)^2 per tap x 2 taps (the stds equal)."""
    enc = TwoTapEncoder()
    stats = [style_image_stats(enc, np.full((8, 8, 3), 0.5, np.float32)) for _ in range(2)]
    targets = [np.full((2, 12, 14, 3), 128, np.uint8), np.full((2, 12, 14, 3), 230, np.uint8)]
    losses = target_window_losses(enc, targets, stats, 4, np.random.default_rng(0), windows=3)
    np.testing.assert_allclose(losses, [2 * (128 / 255.0 - 0.5) ** 2, 2 * (230 / 255.0 - 0.5) ** 2], rtol=1e-4)


def test_window_balance_draws_by_the_renders_distance_over_the_targets():
    """WindowBalance: every style alike until drawn (ratio 1); then shares in proportion to the
    running mean of a style's window losses over its targets' (ratios 2 and 0.5 -> 0.8 / 0.2); the
    running mean keeps 1 - 1/memory of the old value; a reference under 1% of the largest counts
    as 1%; the state round-trips through a checkpoint dict."""
    bal = WindowBalance([2.0, 4.0, 4.0], memory=4)
    np.testing.assert_allclose(bal.shares(), [1 / 3] * 3)
    bal.update(0, 4.0)  # ratio 2
    bal.update(1, 2.0)  # ratio 0.5; style 2 not drawn: 1
    np.testing.assert_allclose(bal.shares(), np.array([2.0, 0.5, 1.0]) / 3.5)
    bal.update(0, 8.0)  # 0.75 * 4 + 0.25 * 8 = 5: ratio 2.5
    np.testing.assert_allclose(bal.running[0], 5.0)
    again = WindowBalance([2.0, 4.0, 4.0], memory=4)
    again.load(bal.state())
    np.testing.assert_array_equal(again.shares(), bal.shares())
    tiny = WindowBalance([1e-9, 1.0])
    np.testing.assert_allclose(tiny.reference, [0.01, 1.0])


def test_window_target_is_bilinear():
    img = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3) ** 1.5
    rows, cols = np.array([0.0, 2.0, 1.25, 3.0, 0.5]), np.array([0.0, 4.0, 2.5, 1.75, 3.0])
    got = window_target(img, rows, cols)
    for k, (y, x) in enumerate(zip(rows, cols)):
        y0, x0 = min(int(y), 2), min(int(x), 3)
        fy, fx = y - y0, x - x0
        ref = (img[y0, x0] * (1 - fy) * (1 - fx) + img[y0, x0 + 1] * (1 - fy) * fx
               + img[y0 + 1, x0] * fy * (1 - fx) + img[y0 + 1, x0 + 1] * fy * fx)
        np.testing.assert_allclose(got[k], ref, rtol=1e-5)
    np.testing.assert_array_equal(window_target(img, np.array([2.0]), np.array([3.0]))[0], img[2, 3])


def test_a_window_larger_than_the_targets_is_refused():
    with pytest.raises(ValueError, match=r"--style_patch 9 is larger than the targets \(30x12\) allow"):
        patch_pixels(np.random.default_rng(0), 1, 1, 12, 30, 9)  # turned, 9 spans up to 12.3 pixels
    patch_pixels(np.random.default_rng(0), 1, 1, 12, 30, 8)


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


def split_loss_np(a, target, own):
    """a, target, own [C,H,W]: sum over the two taps of MSE(means of a, target's) + MSE(stds of a, own's)."""
    def pool(x):
        return x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2).mean(axis=(2, 4))
    total = 0.0
    for ta, tt, to in ((a, target, own), (pool(a), pool(target), pool(own))):
        (ma, sa), (mt, _), (_, so) = stats_np(ta), stats_np(tt), stats_np(to)
        total += ((ma - mt) ** 2).mean() + ((sa - so) ** 2).mean()
    return total


def test_split_loss_takes_the_means_from_the_target_and_the_stds_from_the_views_own():
    """--style_patch_ref view_std against NumPy; 0 for a window with the target's means and the
    own window's stds (the own window shifted by a constant keeps its stds), and neither
    patch_texture_loss against the target nor against the own window is 0 there."""
    rng = np.random.default_rng(6)
    p = 4
    a, target, own = (rng.uniform(0, 1, (p * p, 3)).astype(np.float32) for _ in range(3))
    enc = TwoTapEncoder()
    got = patch_split_loss(enc, jt.array(a), jt.array(target), jt.array(own), p).item()
    as_chw = [x.reshape(p, p, 3).transpose(2, 0, 1) for x in (a, target, own)]
    assert got == pytest.approx(split_loss_np(*as_chw), rel=1e-4)
    # own shifted to the target's means (per channel: the 2x2 pooling keeps the shift) has both
    both = (own - own.mean(0) + target.mean(0)).astype(np.float32)
    assert patch_split_loss(enc, jt.array(both), jt.array(target), jt.array(own), p).item() == \
        pytest.approx(0.0, abs=1e-8)
    assert patch_texture_loss(enc, jt.array(both), jt.array(target), p).item() > 1e-3
    assert patch_texture_loss(enc, jt.array(both), jt.array(own), p).item() > 1e-3


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


def test_style_image_loss_matches_numpy_for_a_larger_style_image_and_is_zero_for_itself():
    """--style_patch_ref style: the window against the whole style image's statistics (an image
    of another size than the window), and the style image rendered as the window gives 0."""
    rng = np.random.default_rng(4)
    p = 4
    window = rng.uniform(0, 1, (p * p, 3)).astype(np.float32)
    style = rng.uniform(0.2, 0.9, (8, 12, 3)).astype(np.float32)  # [h,w,3] like a loaded image
    enc = TwoTapEncoder()
    stats = style_image_stats(enc, style)
    got = patch_style_image_loss(enc, jt.array(window), stats, p).item()
    ref = texture_loss_np(window.reshape(p, p, 3).transpose(2, 0, 1), style.transpose(2, 0, 1))
    assert got == pytest.approx(ref, rel=1e-4)
    square = rng.uniform(0, 1, (p, p, 3)).astype(np.float32)
    same = patch_style_image_loss(enc, jt.array(square.reshape(p * p, 3)), style_image_stats(enc, square), p)
    assert same.item() == pytest.approx(0.0, abs=1e-10)


def nn_loss_np(window, style):
    """window [p,p,3], style [h,w,3]: the deepest (pooled) features, mean of 1 - max cosine."""
    def rows(img):
        c = img.transpose(2, 0, 1).astype(np.float64)
        pooled = c.reshape(3, c.shape[1] // 2, 2, c.shape[2] // 2, 2).mean(axis=(2, 4)).reshape(3, -1).T
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    return (1.0 - (rows(window) @ rows(style).T).max(1)).mean()


def test_nn_loss_matches_numpy_is_zero_for_the_style_image_and_pulls_towards_it():
    """--style_patch_ref nn: each window feature's distance to its nearest style feature."""
    rng = np.random.default_rng(5)
    p = 4
    window = rng.uniform(0, 1, (p, p, 3)).astype(np.float32)
    style = rng.uniform(0, 1, (8, 12, 3)).astype(np.float32)
    enc = TwoTapEncoder()
    rows = style_image_features(enc, style)
    assert rows.shape == (4 * 6, 3)
    got = patch_nn_loss(enc, jt.array(window.reshape(p * p, 3)), rows, p).item()
    assert got == pytest.approx(nn_loss_np(window, style), rel=1e-4, abs=1e-7)
    # a window cut from the style image (on the pooling grid) has every feature in it: 0
    cut = style[2:6, 4:8]
    assert patch_nn_loss(enc, jt.array(cut.reshape(p * p, 3)), rows, p).item() == pytest.approx(0.0, abs=1e-6)
    # descent lowers it
    x = jt.array(window.reshape(p * p, 3))
    before = patch_nn_loss(enc, x, rows, p).item()
    opt = jt.optim.SGD([x], lr=0.5)
    for _ in range(20):
        opt.step(patch_nn_loss(enc, x, rows, p))
    assert patch_nn_loss(enc, x, rows, p).item() < 0.5 * before
