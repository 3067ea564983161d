"""Rendering a frozen density from cached samples: each ray's K heaviest samples.

When the density is frozen (the style stage), a ray's compositing weights no longer change; only
the colours at its samples do.  Each level of a share_color render is then
sum_i w_i c(o + z_i d) over fixed depths z_i with fixed weights w_i (render.renderer.
shared_weights), and most of the weight sits on a few samples near the surface.  top_samples
keeps the K samples that carry the most weight of either level and rescales each level's K
weights to that level's full opacity; composite_cached renders the colours there, at depths
jittered within each sample's interval during training (jittered).  A style step
then runs the style MLP at K points a ray, instead of the frozen NeRF at n_samples +
(n_samples + n_fine) points and the style MLP at n_samples + n_fine (fern.txt: 16 against 320).
With K = n_samples + n_fine nothing is dropped and the render is the exact one (tested).
"""
import jittor as jt
import numpy as np


def top_samples(z, w_coarse, w_fine, k, surface=False, surface_jitter=0.0):
    """NumPy z, w_coarse, w_fine [R,S] (shared_weights) -> (z, w_coarse, w_fine, spread) [R,k] of
    the k samples with the largest w_coarse + w_fine, in depth order; each level's k weights are
    scaled so that they sum to the level's full opacity (sum of its S weights).  spread: half the
    gap to the nearer neighbouring sample, how far a kept depth may be jittered and stay in its
    own interval (what --perturb's jitter does to the renderer's samples).
    surface (k = 1 only): the one depth is the ray's expected depth under the fine weights (the
    photoreal render's depth, a smooth surface across pixels and views) instead of its heaviest
    sample's (which jumps between samples from one pixel to the next); the heaviest where a ray
    has no fine weight.  surface_jitter > 0: its spread is at least that many times the ray's
    depth std under the fine weights, so that training sees the field over the depths the views
    may disagree on (a field that changes faster along the ray than that flickers between views)."""
    R, S = z.shape
    if not 1 <= k <= S:
        raise ValueError(f"top_samples: k must be in 1..{S} (the samples a ray has), got {k}")
    if surface and k != 1:
        raise ValueError(f"top_samples: surface keeps one depth a ray (k = 1), got k {k}")
    both_full = w_coarse + w_fine
    if k == 1:  # a ray's first heaviest sample (argmax: linear, no partition)
        keep = np.argmax(both_full, axis=1)[:, None]
    elif k < S:
        keep = np.argpartition(-both_full, k - 1, axis=1)[:, :k]
    else:
        keep = np.tile(np.arange(S), (R, 1))
    keep = np.take_along_axis(keep, np.argsort(np.take_along_axis(z, keep, 1), axis=1), 1)
    out = [np.take_along_axis(a, keep, 1) for a in (z, w_coarse, w_fine)]
    out.append(_half_gaps(z, keep))
    # a level's weights are scaled to its opacity; where the kept samples hold none of a level's
    # weight (a few samples, and the heaviest is the other level's) that opacity is spread as
    # both levels' kept weights are: scaled to zero, the level would turn the ray black
    both = out[1] + out[2]
    both_sum = both.sum(1, keepdims=True)
    for full, kept in ((w_coarse, out[1]), (w_fine, out[2])):
        total, part = full.sum(1, keepdims=True), kept.sum(1, keepdims=True)
        spread_as = np.where(part > 0, kept / np.maximum(part, 1e-30), both / np.maximum(both_sum, 1e-30))
        kept[:] = spread_as * total
    if surface:
        opacity = w_fine.sum(1, keepdims=True, dtype=np.float64)
        expected = (w_fine * z).sum(1, keepdims=True, dtype=np.float64) / np.maximum(opacity, 1e-30)
        out[0] = np.where(opacity > 1e-6, expected, out[0])
        if surface_jitter > 0:
            var = (w_fine * (z - expected) ** 2).sum(1, keepdims=True, dtype=np.float64) / np.maximum(opacity, 1e-30)
            std = np.where(opacity > 1e-6, np.sqrt(var), 0.0)
            out[3] = np.maximum(out[3], surface_jitter * std)
    return tuple(a.astype(np.float32) for a in out)


def _half_gaps(z, keep):
    """Half the gap from each kept sample (indices keep [R,k] into z [R,S]) to its nearer
    neighbour; the first and last samples have one gap.  Read at the kept samples only: the
    same float subtractions as over every sample, without the [R,S] arrays."""
    S = z.shape[1]
    if S == 1:
        return np.zeros(keep.shape, z.dtype)
    at = lambda i: np.take_along_axis(z, i, 1)
    lo, hi = np.maximum(keep, 1), np.minimum(keep, S - 2)
    return 0.5 * np.minimum(at(lo) - at(lo - 1), at(hi + 1) - at(hi))


def kept_weight(w_coarse, w_fine, ks):
    """NumPy weights [R,S] (shared_weights) -> [len(ks)]: the fine weight that each ray's k
    heaviest samples (by w_coarse + w_fine, as top_samples keeps them) hold, summed over the rays,
    for each k in ks (capped at S).  Over w_fine's sum it is the share of the exact render that a
    k-sample cache holds; the rest comes from samples a style field trained on the cache never
    saw.  Only the largest k's heaviest samples are ranked (a partition, then a sort of those):
    a full sort of every ray's S samples cost 2.3 s a 504x378 view at S = 128 (2-core CPU)."""
    S = w_fine.shape[1]
    ks = [min(int(k), S) for k in ks]
    top = max(ks)
    both = w_coarse + w_fine
    if top < S:
        idx = np.argpartition(-both, top - 1, axis=1)[:, :top]
        order = np.take_along_axis(idx, np.argsort(-np.take_along_axis(both, idx, 1), axis=1, kind="stable"), 1)
    else:
        order = np.argsort(-both, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(w_fine, order, 1), axis=1, dtype=np.float64)
    return np.array([cum[:, k - 1].sum() for k in ks])


def jittered(z, spread, rng):
    """Cached depths z [R,K] moved uniformly within +-spread (NumPy): the fixed samples of the
    cache see the field between them, as the renderer's jittered samples do, so that a texture
    learnt at the samples does not alias into noise at other views' samples."""
    return z + spread * rng.uniform(-1.0, 1.0, z.shape).astype(np.float32)


def cached_points(rays_o, rays_d, z):
    """Points [R,K,3] at depths z [R,K] along rays [R,3] (jt or NumPy; a jt Var back)."""
    as_var = lambda x: x if isinstance(x, jt.Var) else jt.array(np.asarray(x, np.float32))
    rays_o, rays_d, z = as_var(rays_o), as_var(rays_d), as_var(z)
    return rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z.unsqueeze(-1)


def composite_cached(colors, w_coarse, w_fine, white_bkgd=False):
    """{"coarse": {"rgb"}, "fine": {"rgb"}}: colours [R,K,3] (jt) weighted by each level's cached
    weights [R,K] (NumPy or jt), on white where the level's opacity is below 1 (white_bkgd)."""
    out = {}
    for level, w in (("coarse", w_coarse), ("fine", w_fine)):
        w = w if isinstance(w, jt.Var) else jt.array(np.asarray(w, np.float32))
        rgb = (colors * w.unsqueeze(-1)).sum(1)
        if white_bkgd:
            rgb = rgb + (1.0 - w.sum(1, keepdims=True))
        out[level] = {"rgb": rgb}
    return out
