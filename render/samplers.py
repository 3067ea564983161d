"""Depth samples along rays: stratified (coarse) and inverse-CDF (hierarchical, fine).

Both follow nerf-pytorch.  No jt.sort / jt.cumsum (cub; unavailable on the CUDA 13 GPU):
hierarchical_z, which every NeRF step and render chunk calls, does bins, CDF, inverse-CDF samples
(nerf-pytorch's sample_pdf) and the merge with the coarse depths in one `jt.code` kernel (one
thread per ray, walking the CDF and both sorted lists once), since a GPU NeRF step is bound by
the cost per kernel launch (README, Measured).  All z values are detached (no gradient).
"""
import jittor as jt
import numpy as np

from backend.kernels import per_row_kernel


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


def cdf_positions(n_rays, n_samples, deterministic):
    """Where the inverse CDF is read: linspace(0, 1) as [1, n] when deterministic, else
    stratified uniforms (i + U_i) / n as [R, n] (ascending along each row).

    nerf-pytorch draws i.i.d. uniforms and gets sorted samples from torch.sort later; there is no
    GPU sort here, and the merge with the coarse depths needs each row sorted.  Stratified
    uniforms are sorted by construction: the same distribution per sample, lower variance."""
    if deterministic:
        return jt.array(np.linspace(0.0, 1.0, n_samples, dtype=np.float32)).reshape((1, n_samples))
    i = jt.array(np.arange(n_samples, dtype=np.float32)).reshape((1, n_samples))
    return (i + jt.rand((n_rays, n_samples), dtype="float32")) / n_samples


# One ray: bins between the coarse midpoints m_j (j = 0..S-2) with the interior weights
# w_1..w_{S-2} (+1e-5), CDF entries c_0 = 0 .. c_M (M = S-2), fine sample k at u_k by
# nerf-pytorch's rule (searchsorted right, denominators < 1e-5 taken as 1), merged with the
# coarse depths (coarse first on ties).  u ascends, so the CDF walk and the merge go forward only.
_HIERARCHICAL = """
    const long long S = in0_shape1, NF = out0_shape1 - S, M = S - 2;
    const in0_type* z = in0_p + r * S;
    const in1_type* w = in1_p + r * S;
    const in2_type* u = in2_p + (in2_shape0 == 1 ? 0 : r * NF);
    out0_type* out = out0_p + r * (S + NF);
    float total = 0.f;
    for (long long j = 1; j <= M; j++) total += w[j] + 1e-5f;
    long long p = 0;                 // CDF entries <= u seen so far; c_cur = c_p, c_prev = c_{p-1}
    float c_cur = 0.f, c_prev = 0.f;
    auto fine = [&](long long k) -> float {
        const float uk = u[k];
        while (p <= M && c_cur <= uk) {
            c_prev = c_cur;
            p++;
            if (p <= M) c_cur = c_prev + (w[p] + 1e-5f) / total;
        }
        const long long below = p - 1, above = p < M ? p : M;
        const float c_lo = c_prev, c_hi = p <= M ? c_cur : c_prev;
        const float b_lo = 0.5f * (z[below + 1] + z[below]), b_hi = 0.5f * (z[above + 1] + z[above]);
        float denom = c_hi - c_lo;
        if (denom < 1e-5f) denom = 1.f;
        return b_lo + (uk - c_lo) / denom * (b_hi - b_lo);
    };
    long long i = 0, k = 0, o = 0;
    float fk = NF > 0 ? fine(0) : 0.f;
    while (i < S || k < NF) {
        if (k >= NF || (i < S && z[i] <= fk)) { COARSE_INDEX out[o++] = z[i++]; }
        else { out[o++] = fk; k++; if (k < NF) fk = fine(k); }
    }
"""
# with a second output: where each coarse depth landed in the merged row
_COARSE_INDEX = "out1_p[r * S + i] = (out1_type)o;"

_HIERARCHICAL_SRC = per_row_kernel(_HIERARCHICAL.replace("COARSE_INDEX", ""), "hierarchical_z", "in0_shape0")
_HIERARCHICAL_INDEX_SRC = per_row_kernel(_HIERARCHICAL.replace("COARSE_INDEX", _COARSE_INDEX),
                                         "hierarchical_z_index", "in0_shape0")


def hierarchical_z(z_vals, weights, n_fine, deterministic=True, u=None, with_coarse_index=False):
    """Coarse z_vals [R, S] and their weights [R, S] -> all depths [R, S + n_fine], ascending
    (with_coarse_index: and int32 [R, S], the position of each coarse depth in that row, where
    it is copied exactly).

    As nerf-pytorch: the fine samples come from its sample_pdf (pdf = weights + 1e-5, normalised)
    over the bins between the coarse midpoints, with the weights of the interior samples
    (weights[:, 1:-1]); the union is merged.  u: the CDF positions [1 or R, n_fine], ascending
    along each row (default: cdf_positions).
    """
    z_vals, weights = z_vals.detach().float32(), weights.detach().float32()
    n_rays, n_coarse = z_vals.shape
    if n_coarse < 3:
        raise ValueError(f"hierarchical_z: need at least 3 coarse samples, got {n_coarse}")
    if tuple(weights.shape) != (n_rays, n_coarse):
        raise ValueError(f"hierarchical_z: weights {weights.shape} do not match z_vals {z_vals.shape}")
    u = (cdf_positions(n_rays, n_fine, deterministic) if u is None else u).detach().float32()
    shape = [n_rays, n_coarse + n_fine]
    if with_coarse_index:
        cpu, cuda = _HIERARCHICAL_INDEX_SRC
        z_all, index = jt.code([shape, [n_rays, n_coarse]], ["float32", "int32"], [z_vals, weights, u],
                               cpu_src=cpu, cuda_src=cuda)
        return z_all.stop_grad(), index.stop_grad()
    cpu, cuda = _HIERARCHICAL_SRC
    return jt.code(shape, "float32", [z_vals, weights, u], cpu_src=cpu, cuda_src=cuda).stop_grad()
