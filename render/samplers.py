"""Depth samples along rays: stratified (coarse) and inverse-CDF (hierarchical, fine).

Both follow nerf-pytorch.  No jt.sort / jt.cumsum (cub; unavailable on the CUDA 13 GPU): the
CDF uses core.ops.cumsum_last, the bin lookup core.ops.searchsorted and the final union of
coarse and fine depths core.ops.merge_sorted.  All z values are detached (no gradient).
"""
import jittor as jt
import numpy as np

from core.ops import cumsum_last, merge_sorted, searchsorted


def _per_ray(value, n_rays):
    """float or [R] -> [R, 1] float32 Var."""
    if isinstance(value, (int, float, np.floating, np.integer)):
        return jt.full((n_rays, 1), float(value), dtype="float32")
    value = jt.array(value).float32()
    if value.ndim == 2 and value.shape[1] == 1:
        value = value.reshape((value.shape[0],))
    if value.ndim != 1 or value.shape[0] != n_rays:
        raise ValueError(f"near/far: expected a float or [R={n_rays}] values, got shape {value.shape}")
    return value.reshape((n_rays, 1))


def stratified_samples(near, far, n_samples, perturb=False, lindisp=False, n_rays=None):
    """Coarse depths z_vals [R, n_samples], ascending.

    near, far: floats or [R] arrays (n_rays is needed when both are floats).  Evenly spaced in
    depth (or in inverse depth with lindisp) from near to far; with perturb each sample is
    drawn uniformly within its bin (bins split at the midpoints), as nerf-pytorch.
    """
    if n_rays is None:
        for v in (near, far):
            if not isinstance(v, (int, float, np.floating, np.integer)):
                n_rays = int(v.shape[0])
        if n_rays is None:
            raise ValueError("stratified_samples: n_rays is needed when near and far are both floats")
    if n_samples < 1:
        raise ValueError(f"stratified_samples: n_samples must be >= 1, got {n_samples}")
    near, far = _per_ray(near, n_rays), _per_ray(far, n_rays)
    t = jt.array(np.linspace(0.0, 1.0, n_samples, dtype=np.float32)).reshape((1, n_samples))
    if lindisp:
        z = 1.0 / (1.0 / near * (1.0 - t) + 1.0 / far * t)
    else:
        z = near * (1.0 - t) + far * t
    if perturb and n_samples > 1:
        mids = 0.5 * (z[:, 1:] + z[:, :-1])
        upper = jt.concat([mids, z[:, -1:]], dim=-1)
        lower = jt.concat([z[:, :1], mids], dim=-1)
        z = lower + (upper - lower) * jt.rand(z.shape, dtype="float32")
    return z.stop_grad()


def _gather_last(x, index):
    """x [R, M], index int [R, S] -> x[r, index[r, s]] as [R, S]."""
    return x.reindex(list(index.shape), ["i0", "@e0(i0,i1)"], extras=[index])


def sample_pdf(bins, weights, n_samples, deterministic=True):
    """Inverse-CDF samples: bins [R, M+1] edges (ascending), weights [R, M] -> [R, n_samples] ascending.

    As nerf-pytorch's sample_pdf: pdf = (weights + 1e-5) normalised, cdf with a leading 0,
    u = linspace(0, 1, n) when deterministic.  Random mode draws stratified uniforms
    u_i = (i + U_i) / n, which are sorted by construction (nerf-pytorch draws i.i.d. uniforms and
    gets sorted samples from torch.sort later; we have no GPU sort, and the merge with the coarse
    depths needs each row sorted).  Same distribution per sample, lower variance.
    """
    bins, weights = bins.detach().float32(), weights.detach().float32()
    n_rays, n_bins = weights.shape
    if bins.shape != (n_rays, n_bins + 1):
        raise ValueError(f"sample_pdf: bins must be [R, M+1] for weights [R, M]; got {bins.shape} and {weights.shape}")
    weights = weights + 1e-5  # no zero-probability row
    pdf = weights / weights.sum(dim=-1, keepdims=True)
    cdf = jt.concat([jt.zeros((n_rays, 1), dtype="float32"), cumsum_last(pdf)], dim=-1)  # [R, M+1]
    if deterministic:
        u = jt.array(np.linspace(0.0, 1.0, n_samples, dtype=np.float32)).reshape((1, n_samples))
        u = u.broadcast((n_rays, n_samples))
    else:
        i = jt.array(np.arange(n_samples, dtype=np.float32)).reshape((1, n_samples))
        u = (i + jt.rand((n_rays, n_samples), dtype="float32")) / n_samples

    inds = searchsorted(cdf, u)                                 # [R, S] in 0..M+1
    below = jt.maximum(inds - 1, 0)
    above = jt.minimum(inds, n_bins)
    cdf_lo, cdf_hi = _gather_last(cdf, below), _gather_last(cdf, above)
    bin_lo, bin_hi = _gather_last(bins, below), _gather_last(bins, above)
    denom = cdf_hi - cdf_lo
    denom = jt.ternary(denom < 1e-5, jt.ones_like(denom), denom)
    t = (u - cdf_lo) / denom
    return (bin_lo + t * (bin_hi - bin_lo)).stop_grad()


def hierarchical_z(z_vals, weights, n_fine, deterministic=True):
    """Coarse z_vals [R, S] and their weights [R, S] -> all depths [R, S + n_fine], ascending.

    As nerf-pytorch: the fine samples come from sample_pdf over the bins between the coarse
    midpoints, with the weights of the interior samples (weights[:, 1:-1]); the union is merged.
    """
    z_vals = z_vals.detach()
    if z_vals.shape[1] < 3:
        raise ValueError(f"hierarchical_z: need at least 3 coarse samples, got {z_vals.shape[1]}")
    mids = 0.5 * (z_vals[:, 1:] + z_vals[:, :-1])
    z_fine = sample_pdf(mids, weights.detach()[:, 1:-1], n_fine, deterministic)
    return merge_sorted(z_vals, z_fine)
