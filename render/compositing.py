"""Volume compositing of samples along rays (nerf-pytorch's raw2outputs).

delta_i = (z_{i+1} - z_i) * |d| (last: 1e10 * |d|); alpha_i = 1 - exp(-relu(sigma_i + noise) delta_i);
T_i = prod_{j<i} (1 - alpha_j + 1e-10); w_i = alpha_i T_i; rgb = sum w_i c_i; depth = sum w_i z_i;
acc = sum w_i.  The exclusive product is exp of an exclusive cumulative sum of logs (no
jt.cumprod, which needs cub); core.ops.cumsum_last is differentiable, so autograd gives the
gradients.
"""
import jittor as jt
from jittor import nn

from core.ops import cumsum_last


def composite(rgb, sigma_raw, z_vals, rays_d, noise_std=0.0, white_bkgd=False):
    """rgb [R,S,3] in [0,1], sigma_raw [R,S], z_vals [R,S], rays_d [R,3] ->
    dict(rgb [R,3], depth [R], acc [R], weights [R,S]).

    noise_std > 0 adds N(0, noise_std^2) to sigma_raw before the ReLU (training regulariser).
    white_bkgd composites onto white: rgb + (1 - acc).
    """
    n_rays, n_samples = sigma_raw.shape
    if tuple(rgb.shape) != (n_rays, n_samples, 3) or tuple(z_vals.shape) != (n_rays, n_samples):
        raise ValueError(f"composite: expected rgb [R,S,3], sigma [R,S], z [R,S]; got {rgb.shape}, "
                         f"{sigma_raw.shape}, {z_vals.shape}")
    ray_len = jt.sqrt((rays_d * rays_d).sum(dim=-1, keepdims=True))        # [R, 1]
    far_gap = jt.full((n_rays, 1), 1e10, dtype="float32")
    deltas = jt.concat([z_vals[:, 1:] - z_vals[:, :-1], far_gap], dim=-1) * ray_len
    if noise_std > 0:
        sigma_raw = sigma_raw + jt.randn(sigma_raw.shape, dtype="float32") * noise_std
    optical = nn.relu(sigma_raw) * deltas                                    # [R, S]
    alpha = 1.0 - jt.exp(-optical)
    # log(1 - alpha + 1e-10) written as log(exp(-x) + 1e-10): no 1 - (1 - e) cancellation, which
    # (re-associated by the compiler) gave log(0) and NaN gradients.  The last sample's factor
    # (delta 1e10) is never used by the exclusive product, so it is left out.
    log_trans = jt.log(jt.exp(-optical[:, :-1]) + 1e-10)                    # [R, S-1]
    excl = jt.concat([jt.zeros((n_rays, 1), dtype="float32"), cumsum_last(log_trans)], dim=-1)
    weights = alpha * jt.exp(excl)                                          # [R, S]
    out_rgb = (weights.unsqueeze(-1) * rgb).sum(dim=1)
    acc = weights.sum(dim=-1)
    depth = (weights * z_vals).sum(dim=-1)
    if white_bkgd:
        out_rgb = out_rgb + (1.0 - acc).unsqueeze(-1)
    return {"rgb": out_rgb, "depth": depth, "acc": acc, "weights": weights}
