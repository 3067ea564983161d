"""The NeRF MLP (nerf-pytorch's layout, which the original StylizedNeRF uses).

Density trunk: D linear layers of width W with ReLU; the encoded position is concatenated again
(in front) after each layer index in `skips` (nerf-pytorch: after layer 4, so layer 5 sees W + 63).
With view directions: sigma head W->1 (raw; the ReLU is applied in compositing), feature W->W,
colour head [feature, encoded direction] (W + 27) -> W//2, ReLU, -> 3, sigmoid.
Without: colour head W->3 (sigmoid) and sigma head W->1 on the trunk output.
Default size (D=8, W=256, 63, 27): 595,844 parameters.
"""
import jittor as jt
from jittor import nn

from models.layers import Linear, linear_relu


class NeRF(nn.Module):
    def __init__(self, D=8, W=256, input_ch=63, input_ch_views=27, skips=(4,), use_viewdirs=True):
        super().__init__()
        if D < 1 or W < 2:
            raise ValueError(f"NeRF: need D >= 1 and W >= 2, got D={D}, W={W}")
        if use_viewdirs and input_ch_views <= 0:
            raise ValueError("NeRF: use_viewdirs needs input_ch_views > 0")
        self.D, self.W = D, W
        self.input_ch, self.input_ch_views = input_ch, input_ch_views
        # a skip after the last layer would change the heads' width: only inner layers skip
        self.skips = tuple(i for i in skips if 0 <= i < D - 1)
        self.use_viewdirs = bool(use_viewdirs)
        widths_in = [input_ch] + [W + input_ch if i in self.skips else W for i in range(D - 1)]
        self.pts_linears = nn.ModuleList([Linear(c, W) for c in widths_in])
        self.alpha_linear = Linear(W, 1)
        if self.use_viewdirs:
            self.feature_linear = Linear(W, W)
            self.views_linear = Linear(W + input_ch_views, W // 2)
            self.rgb_linear = Linear(W // 2, 3)
        else:
            self.rgb_linear = Linear(W, 3)

    def density(self, x_emb):
        """x_emb [..., input_ch] -> (sigma_raw [...], feature [..., W])."""
        h = x_emb
        for i, layer in enumerate(self.pts_linears):
            h = linear_relu(layer, h)
            if i in self.skips:
                h = jt.concat([x_emb, h], dim=-1)
        sigma_raw = self.alpha_linear(h).squeeze(-1)
        feature = self.feature_linear(h) if self.use_viewdirs else h
        return sigma_raw, feature

    def color(self, feature, dir_emb=None):
        """feature [..., W], dir_emb [..., input_ch_views] (ignored without viewdirs) -> rgb [..., 3] in [0, 1]."""
        if self.use_viewdirs:
            if dir_emb is None:
                raise ValueError("NeRF.color: this NeRF uses view directions; dir_emb is missing")
            h = linear_relu(self.views_linear, jt.concat([feature, dir_emb], dim=-1))
            return jt.sigmoid(self.rgb_linear(h))
        return jt.sigmoid(self.rgb_linear(feature))

    def execute(self, x_emb, dir_emb=None):
        """-> (rgb [..., 3], sigma_raw [...])."""
        sigma_raw, feature = self.density(x_emb)
        return self.color(feature, dir_emb), sigma_raw

