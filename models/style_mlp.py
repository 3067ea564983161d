"""The style colour MLP and the per-(style, view) latent codes of the style stage.

StyleMLP replaces NeRF's colour head (geometry stays the frozen NeRF's): colour from the encoded
position and a latent code, no view direction.  As the original: D linear layers in all, D-1
hidden of width W with ReLU plus the output layer; the latent is concatenated before every
layer (the output layer too) and the encoded position again before hidden layer index 4.
Default (D=8, W=256, 63, 32): 485,475 parameters.

LatentCodes holds one trainable code per (style, training view), drawn around the style's VAE
mean; the style's mean and log-variance are fixed.
"""
from collections import namedtuple

import jittor as jt
import numpy as np
from jittor import nn

from models.hash_grid import HashGrid
from models.layers import Linear, linear_relu


class StyleMLP(nn.Module):
    def __init__(self, D=8, W=256, input_ch=63, latent_dim=32, skips=(4,)):
        super().__init__()
        if D < 2 or W < 1:
            raise ValueError(f"StyleMLP: need D >= 2 (hidden + output layers) and W >= 1, got D={D}, W={W}")
        self.D, self.W, self.input_ch, self.latent_dim = D, W, input_ch, latent_dim
        self.skips = tuple(i for i in skips if 0 < i < D - 1)  # index 0 sees the position anyway
        widths_in = [input_ch + latent_dim] + [
            W + latent_dim + (input_ch if i in self.skips else 0) for i in range(1, D - 1)]
        self.hidden = nn.ModuleList([Linear(c, W) for c in widths_in])
        self.out_linear = Linear(W + latent_dim, 3)

    def execute(self, x_emb, latent, style=None):
        """x_emb [..., input_ch], latent [..., latent_dim] -> rgb [..., 3] in [0, 1].  style: the
        points' style (HashStyleMLP's per-style grids); unused here."""
        if x_emb.shape[-1] != self.input_ch or latent.shape[-1] != self.latent_dim:
            raise ValueError(f"StyleMLP: expected [..,{self.input_ch}] and [..,{self.latent_dim}], "
                             f"got {x_emb.shape} and {latent.shape}")
        h = x_emb
        for i, layer in enumerate(self.hidden):
            parts = [h, latent] + ([x_emb] if i in self.skips else [])
            h = linear_relu(layer, jt.concat(parts, dim=-1))
        return jt.sigmoid(self.out_linear(jt.concat([h, latent], dim=-1)))


# A blend of two styles' grid features, (1 - weight) * first's + weight * second's: the frames of a
# style interpolation (--style_interp) with per-style grids
StyleMix = namedtuple("StyleMix", "first second weight")


class HashStyleMLP(nn.Module):
    """A StyleMLP fed, beside the encoded position, a HashGrid's features at the position
    (--style_encoding hash).  Same call as StyleMLP: the position is the encoding's first 3
    channels (a PositionalEncoding with include_input), so every caller stays as it is.

    grid: a HashGrid of one table shared by every style, or of a table per style (n_tables =
    the number of styles, --hash_per_style): a style's texture then has rows of its own instead of
    sharing them with the others, and each call names the style of its points."""

    def __init__(self, grid, D=8, W=256, input_ch=63, latent_dim=32):
        super().__init__()
        if not isinstance(grid, HashGrid):
            raise ValueError("HashStyleMLP: grid must be a HashGrid")
        self.grid = grid  # checkpoint keys "grid.*" (a table per style: the tables stacked)
        self.n_grids = grid.n_tables
        self.input_ch = input_ch
        self.mlp = StyleMLP(D=D, W=W, input_ch=input_ch + grid.out_dim, latent_dim=latent_dim)

    def grid_tables(self):
        """The grid's table (its own learning rate)."""
        return [self.grid.table]

    def features(self, pos, style=None):
        """The grid features [N, F] at positions [N, 3].  style: with per-style tables, the style
        index of every point (an int for all, or a NumPy array [N]) or a StyleMix; ignored with a
        shared table."""
        if self.n_grids == 1:
            return self.grid(pos)
        if style is None:
            raise ValueError("HashStyleMLP: per-style grids need the style of the points")
        if isinstance(style, StyleMix):
            w = float(style.weight)
            return (1 - w) * self.features(pos, style.first) + w * self.features(pos, style.second)
        ids = np.asarray(style)
        if ids.ndim > 1 or (ids.ndim == 1 and ids.shape != (pos.shape[0],)):
            raise ValueError(f"HashStyleMLP: {ids.shape} style indices for {pos.shape[0]} points")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_grids):
            raise ValueError(f"HashStyleMLP: style index out of range 0..{self.n_grids - 1}")
        return self.grid(pos, ids)

    def execute(self, x_emb, latent, style=None):
        if x_emb.shape[-1] != self.input_ch:
            raise ValueError(f"HashStyleMLP: expected [..,{self.input_ch}], got {x_emb.shape}")
        return self.mlp(jt.concat([x_emb, self.features(x_emb[..., :3], style)], dim=-1), latent)


class LatentCodes(nn.Module):
    """Trainable codes z [S, V, d] around fixed per-style Gaussians (mu_s, logvar_s) [S, d].

    Parameters (state_dict): `codes` (trainable), `mu` and `logvar` (fixed: stop_grad, which
    Jittor's optimisers skip).  sigma_scale scales the code's deviation from the mean at lookup.
    """

    def __init__(self, mu, logvar, n_views, sigma_scale=1.0, rng=None):
        super().__init__()
        mu = np.asarray(mu, np.float32)
        logvar = np.asarray(logvar, np.float32)
        if mu.ndim != 2 or mu.shape != logvar.shape:
            raise ValueError(f"LatentCodes: mu and logvar must both be [S, d], got {mu.shape} and {logvar.shape}")
        if int(n_views) < 1:
            raise ValueError(f"LatentCodes: n_views must be >= 1, got {n_views}")
        rng = np.random.default_rng() if rng is None else rng
        self.n_styles, self.latent_dim = mu.shape
        self.n_views = int(n_views)
        self.sigma_scale = float(sigma_scale)
        noise = rng.standard_normal((self.n_styles, self.n_views, self.latent_dim)).astype(np.float32)
        codes = mu[:, None, :] + np.exp(logvar[:, None, :] / 2) * noise
        self.codes = jt.array(codes)                      # [S, V, d], trainable
        self.mu = jt.array(mu).stop_grad()                # [S, d], fixed
        self.logvar = jt.array(logvar).stop_grad()        # [S, d], fixed

    def _check_ids(self, style_ids, view_ids=None):
        s = np.asarray(style_ids.numpy() if isinstance(style_ids, jt.Var) else style_ids)
        if s.size and (s.min() < 0 or s.max() >= self.n_styles):
            raise ValueError(f"LatentCodes: style id out of range 0..{self.n_styles - 1}")
        if view_ids is not None:
            v = np.asarray(view_ids.numpy() if isinstance(view_ids, jt.Var) else view_ids)
            if v.shape != s.shape:
                raise ValueError(f"LatentCodes: style_ids {s.shape} and view_ids {v.shape} differ in shape")
            if v.size and (v.min() < 0 or v.max() >= self.n_views):
                raise ValueError(f"LatentCodes: view id out of range 0..{self.n_views - 1} "
                                 "(novel views: use style_mean)")

    def _raw(self, style_ids, view_ids):
        """z_sv [B, d] (trainable rows of `codes`)."""
        flat = jt.array(style_ids).int32() * self.n_views + jt.array(view_ids).int32()
        return self.codes.reshape((self.n_styles * self.n_views, self.latent_dim))[flat]

    def lookup(self, style_ids, view_ids):
        """style_ids, view_ids [B] -> used code mu_s + sigma_scale * (z_sv - mu_s) [B, d]."""
        self._check_ids(style_ids, view_ids)
        mu = self.style_mean(style_ids)
        return mu + self.sigma_scale * (self._raw(style_ids, view_ids) - mu)

    def style_mean(self, style_ids):
        """style_ids [B] -> mu_s [B, d] (the code for novel views)."""
        self._check_ids(style_ids)
        return self.mu[jt.array(style_ids).int32()]

    def logp_loss(self, style_ids, view_ids):
        """Mean over the batch of sum_d (z_sv - mu_s)^2 / (exp(logvar_s / 2) + 1e-3)."""
        self._check_ids(style_ids, view_ids)
        ids = jt.array(style_ids).int32()
        diff = self._raw(style_ids, view_ids) - self.mu[ids]
        std = jt.exp(self.logvar[ids] / 2)
        return (diff.sqr() / (std + 1e-3)).sum(dim=-1).mean()
