"""The style stage's texture term: one rendered patch a step, judged by its VGG statistics.

Per-pixel MSE to targets that disagree from view to view teaches the style MLP their average,
and averaging erases texture: on fern's photos with the relu3_1 decoder, a Gaussian blur of
0.5 pixel raises AdaIN's style loss of the targets 1.8x, and the mean of targets shifted by up
to 1 pixel 2.0x (bench/diag/diag_target_scale.py).  The texture term asks instead that a
rendered P x P patch has the channel means and stds of the encoder's taps (AdaIN's style-loss
statistics) of the same patch of its target: the strokes' statistics without their exact
positions, which one 3D field can give every view at once.  --style_patch_weight 0 (default):
the original's objective, MSE only.  The window is turned by a random angle (patch_pixels).
--style_patch_ref view (with --target_propagation) reads the same window of the view's own
stylization, kept beside the propagated targets: the pixels' MSE follows the targets that agree
between views, the texture the strokes that propagation broke up on a sharp NeRF (fern.txt's:
2.84x -> 2.09x per-frame AdaIN's style loss for la_muse at equal time; bench/results, 2026-12-06),
but it cost sketch and Matisse as much (1.72x -> 1.93x, 1.05x -> 1.65x at 8,000 steps), most
likely through the channel means: the views' own stylizations put their colour patches apart,
and the means pull each view toward its own.  --style_patch_ref view_std takes the means from
the target window and only the stds (the texture's contrast) from the view's own stylization:
on the CPU it took most of Matisse's cost back (1.62x -> 1.46x, the target window 1.40x) and most
of la_muse's gain too (1.93x -> 2.36x, the target window 2.47x; docs/STYLE_STRENGTH.md).
--style_patch_ref style asks instead for the style image's own statistics (its whole image at
--style_size): the measure evaluate.py reports, optimised on one window a step of the 3D field,
as Gatys et al.'s image optimisation does on one image.  Every window then has to hold the whole
painting's palette, which a small field answers with one motif tiled over the scene
(bench/results, 2026-12-05 part 11).  --style_patch_ref nn asks only that each deepest feature
of the window be close (cosine) to some feature of the style image: nearest-neighbour feature
matching, ARF's loss (Zhang et al., 2022), which lets each window take the painting's parts that
suit it.  With several styles each window belongs to one style drawn at random, a third each for
three; --style_patch_balance (WindowBalance) draws them instead by how far the render's windows
of each style lie from its painting, relative to its targets' windows.
"""
import jittor as jt
import numpy as np

from models.adain import channel_stats, mse, style_loss
from models.layers import transpose


def window_span(p):
    """Pixels a side that a p x p window needs to stay inside the target at any turn."""
    return int(np.ceil((p - 1) * np.sqrt(2.0))) + 1


def patch_pixels(rng, n_styles, n_views, h, w, p, shares=None):
    """One random (style, view) and a p x p window of sample positions inside its h x w target,
    turned by a random angle about a random centre: (styles, views, rows, cols), each [p*p] in
    row-major order of the window, rows and cols as floats (pixel units; the rays go through
    them and the target is read bilinearly, window_target).  The turn keeps the window's axes
    off the pixel grid: axis-aligned windows taught a small style MLP a plaid of horizontal and
    vertical strokes (docs/STYLE_STRENGTH.md).  shares: each style's probability (WindowBalance),
    else every style alike."""
    half = (p - 1) / 2.0
    reach = half * np.sqrt(2.0)  # the corners' distance from the centre, whatever the angle
    if window_span(p) > min(h, w):
        raise ValueError(f"--style_patch {p} is larger than the targets ({w}x{h}) allow: a turned window needs "
                         f"{window_span(p)} pixels a side; use a smaller patch or a smaller --target_factor")
    s = rng.integers(n_styles) if shares is None else rng.choice(n_styles, p=shares)
    v = rng.integers(n_views)
    cy, cx = rng.uniform(reach, h - 1 - reach), rng.uniform(reach, w - 1 - reach)
    a = rng.uniform(0.0, 2.0 * np.pi)
    i, j = np.meshgrid(np.arange(p) - half, np.arange(p) - half, indexing="ij")
    rows = cy + i * np.cos(a) - j * np.sin(a)
    cols = cx + i * np.sin(a) + j * np.cos(a)
    return np.full(p * p, s), np.full(p * p, v), rows.ravel(), cols.ravel()


def window_target(image, rows, cols):
    """Bilinear samples [n,3] float32 (the image's units) of image [h,w,3] at float rows, cols."""
    h, w = image.shape[:2]
    r0 = np.clip(np.floor(rows).astype(np.int64), 0, h - 2)
    c0 = np.clip(np.floor(cols).astype(np.int64), 0, w - 2)
    fr, fc = (rows - r0)[:, None], (cols - c0)[:, None]
    img = np.asarray(image, np.float32)
    top = img[r0, c0] * (1 - fc) + img[r0, c0 + 1] * fc
    bottom = img[r0 + 1, c0] * (1 - fc) + img[r0 + 1, c0 + 1] * fc
    return (top * (1 - fr) + bottom * fr).astype(np.float32)


def as_image(rgb, p):
    """[p*p,3] colours of a row-major window -> [1,3,p,p] (the encoder's layout)."""
    return transpose(rgb.reshape(1, p, p, 3), 0, 3, 1, 2)


def patch_texture_loss(encoder, rgb, target, p):
    """AdaIN's style loss of the rendered window rgb [p*p,3] against its target window [p*p,3]
    (a constant): the sum over the encoder's taps of MSE(channel means) + MSE(channel stds)."""
    target_taps = [t.stop_grad() for t in encoder(as_image(target, p).stop_grad())]
    return style_loss(encoder(as_image(rgb, p)), target_taps)


def patch_split_loss(encoder, rgb, target, own, p):
    """--style_patch_ref view_std: the rendered window rgb [p*p,3]'s channel means against those
    of its target window, its channel stds against those of the same window of the view's own
    stylization (both [p*p,3], constants), summed over the encoder's taps as style_loss does."""
    total = 0.0
    taps = zip(encoder(as_image(rgb, p)), encoder(as_image(target, p).stop_grad()),
               encoder(as_image(own, p).stop_grad()))
    for tap, target_tap, own_tap in taps:
        om, os_ = channel_stats(tap)
        tm = channel_stats(target_tap)[0].stop_grad()
        vs = channel_stats(own_tap)[1].stop_grad()
        total = total + mse(om, tm) + mse(os_, vs)
    return total


def target_window_losses(encoder, targets, stats, p, rng, windows=8):
    """The mean texture loss (patch_style_image_loss against each style image's statistics, stats)
    of `windows` random p x p windows of each style's own targets [V,H,W,3] (uint8): how far the
    2D stylization itself lies from each painting at the window's scale.  Returns [S] float64."""
    losses = []
    for stack, st in zip(targets, stats):
        total = 0.0
        for _ in range(windows):
            _, v, r, c = patch_pixels(rng, 1, len(stack), stack.shape[1], stack.shape[2], p)
            with jt.no_grad():
                win = jt.array(window_target(stack[v[0]], r, c) / 255.0)
                total += float(patch_style_image_loss(encoder, win, st, p).item())
        losses.append(total / windows)
    return np.asarray(losses, np.float64)


class WindowBalance:
    """--style_patch_balance: each texture window's style drawn in proportion to how far the
    stylized NeRF's windows of that style lie from its painting, relative to how far its targets'
    windows do (target_window_losses): ratio_s = running mean of the rendered windows' texture
    loss / the targets' windows' loss, shares = ratios / their sum.  A style the field follows
    least, for its painting, gets the most windows; a style not yet drawn counts as 1.  The
    running means (the last `memory` windows of a style, about) are kept in the style
    checkpoints, so a resumed run draws as an uncut one.  A reference below 1% of the largest
    counts as that 1%."""

    def __init__(self, reference, memory=50):
        reference = np.asarray(reference, np.float64)
        # targets that match their painting almost exactly would make any render's ratio explode
        self.reference = np.maximum(reference, 0.01 * max(float(reference.max()), 1e-12))
        self.running = np.full(len(self.reference), np.nan)
        self.keep = 1.0 - 1.0 / memory

    def shares(self):
        ratio = np.where(np.isnan(self.running), 1.0, self.running / self.reference)
        ratio = np.maximum(ratio, 1e-6)
        return ratio / ratio.sum()

    def update(self, style, loss):
        old = self.running[style]
        self.running[style] = loss if np.isnan(old) else self.keep * old + (1.0 - self.keep) * loss

    def state(self):
        # the reference is measured again, the same, at every start: only the running means are kept
        return {"window_balance": {"running": self.running.tolist()}}

    def load(self, ck):
        got = ck.get("window_balance")
        if got is not None and len(got["running"]) == len(self.running):
            self.running = np.asarray(got["running"], np.float64)


def _as_batch(image):
    """A style image [h,w,3] in [0,1] -> [1,3,h,w] (the encoder's layout)."""
    return jt.array(np.ascontiguousarray(np.asarray(image, np.float32).transpose(2, 0, 1))[None])


def style_image_stats(encoder, image):
    """[(mean [1,C], std [1,C]) per encoder tap] of one style image [h,w,3] in [0,1], constants."""
    with jt.no_grad():
        return [tuple(s.stop_grad() for s in channel_stats(t)) for t in encoder(_as_batch(image))]


def patch_style_image_loss(encoder, rgb, stats, p):
    """AdaIN's style loss of the rendered window rgb [p*p,3] against a style image's tap
    statistics (style_image_stats): sum over taps of MSE(channel means) + MSE(channel stds)."""
    total = 0.0
    for tap, (sm, ss) in zip(encoder(as_image(rgb, p)), stats):
        om, os_ = channel_stats(tap)
        total = total + mse(om, sm) + mse(os_, ss)
    return total


def style_image_features(encoder, image):
    """The style image's [h,w,3] deepest encoder features as unit rows [M,C], a constant."""
    with jt.no_grad():
        return _unit_rows(encoder.encode(_as_batch(image))).stop_grad()


def _unit_rows(feat):
    """[1,C,h,w] -> [h*w, C] rows of unit length."""
    c = feat.shape[1]
    rows = transpose(feat.reshape(c, -1), 1, 0)
    return rows / (rows.sqr().sum(1, keepdims=True) + 1e-12).sqrt()


def patch_nn_loss(encoder, rgb, style_rows, p):
    """Nearest-neighbour feature matching of the rendered window rgb [p*p,3]: the mean over its
    deepest features of 1 - the largest cosine similarity to any style feature (style_rows,
    style_image_features)."""
    rows = _unit_rows(encoder.encode(as_image(rgb, p)))
    return (1.0 - rows.matmul(transpose(style_rows, 1, 0)).max(1)).mean()
