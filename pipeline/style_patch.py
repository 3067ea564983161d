"""The style stage's texture term: one rendered patch a step, judged by its VGG statistics.

Per-pixel MSE to targets that disagree from view to view teaches the style MLP their average,
and averaging erases texture: on fern's photos with the relu3_1 decoder, a Gaussian blur of
0.5 pixel raises AdaIN's style loss of the targets 1.8x, and the mean of targets shifted by up
to 1 pixel 2.0x (bench/diag/diag_target_scale.py).  The texture term asks instead that a
rendered P x P patch has the channel means and stds of the encoder's taps (AdaIN's style-loss
statistics) of the same patch of its target: the strokes' statistics without their exact
positions, which one 3D field can give every view at once.  --style_patch_weight 0 (default):
the original's objective, MSE only.
"""
import numpy as np

from models.adain import style_loss
from models.layers import transpose


def patch_pixels(rng, n_styles, n_views, h, w, p):
    """One random (style, view) and a p x p window inside its h x w target: (styles, views,
    rows, cols), each [p*p] in row-major order of the window."""
    if p > min(h, w):
        raise ValueError(f"--style_patch {p} is larger than the targets ({w}x{h}): use a smaller patch "
                         "or a smaller --target_factor")
    s, v = rng.integers(n_styles), rng.integers(n_views)
    r0, c0 = rng.integers(h - p + 1), rng.integers(w - p + 1)
    rows, cols = np.meshgrid(np.arange(r0, r0 + p), np.arange(c0, c0 + p), indexing="ij")
    return np.full(p * p, s), np.full(p * p, v), rows.ravel(), cols.ravel()


def as_image(rgb, p):
    """[p*p,3] colours of a row-major window -> [1,3,p,p] (the encoder's layout)."""
    return transpose(rgb.reshape(1, p, p, 3), 0, 3, 1, 2)


def patch_texture_loss(encoder, rgb, target, p):
    """AdaIN's style loss of the rendered window rgb [p*p,3] against its target window [p*p,3]
    (a constant): the sum over the encoder's taps of MSE(channel means) + MSE(channel stds)."""
    target_taps = [t.stop_grad() for t in encoder(as_image(target, p).stop_grad())]
    return style_loss(encoder(as_image(rgb, p)), target_taps)
