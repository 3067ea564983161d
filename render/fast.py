"""The fast renderer: the exact renderer's samples, but the MLPs run only where they matter.

Rendering (no gradients) keeps every sample position of the exact coarse + fine renderer (so
hierarchical sampling is unchanged) and evaluates the MLPs at a sample only if
- its cell of the NeRF's occupancy grid (render/occupancy.py) is occupied - an empty cell's
  density gives less than the grid's alpha (1e-4) of opacity, so its sigma is taken as 0
  (the last sample of a ray, whose step is 1e10, is always evaluated); and
- the ray's transmittance in front of it is still above `stop` (1e-4; early ray termination:
  everything behind carries less than that weight in total).
The samples that pass are compacted into one dense batch per round and their results
scattered back; samples not evaluated get sigma 0 (and colour 0, which their zero weight
ignores), and the exact compositing kernel composites the full rows.  A ray's occupied samples
are evaluated `per_round` at a time, front to back, and only rays still visible go on.

Colour (share_color: the style MLP, one pass per style) is evaluated only at samples with a
non-zero weight in front of the termination point, at either level.  The coarse weights
differ from the exact ones by less than alpha per skipped sample plus `stop`, so the fine
depths move only negligibly.

Batch sizes are rounded up (at most 1/16 more rows) so that the GPU sees few distinct shapes.
Counters of MLP rows evaluated against those of the exact renderer are kept in `.stats`.
"""
import collections

import jittor as jt
import numpy as np

from backend.kernels import elementwise_kernel, per_row_kernel
from render.compositing import composite
from render.samplers import hierarchical_z, stratified_samples

STOP = 1e-4       # early termination: transmittance below which a ray is finished
PER_ROUND = 16    # occupied samples per ray evaluated per round

_LOOKUP = elementwise_kernel("""
    const double x = in0_p[3 * i], y = in0_p[3 * i + 1], z = in0_p[3 * i + 2];
    const double fx = (x - in2_p[0]) / ((double)in2_p[3] - in2_p[0]) * in1_shape0;
    const double fy = (y - in2_p[1]) / ((double)in2_p[4] - in2_p[1]) * in1_shape1;
    const double fz = (z - in2_p[2]) / ((double)in2_p[5] - in2_p[2]) * in1_shape2;
    unsigned char occ = 1;  // outside the box (or NaN): occupied
    if (fx >= 0 && fx < in1_shape0 && fy >= 0 && fy < in1_shape1 && fz >= 0 && fz < in1_shape2)
        occ = in1_p[((long long)fx * in1_shape1 + (long long)fy) * in1_shape2 + (long long)fz] ? 1 : 0;
    out0_p[i] = occ;
""", "occupancy_lookup", ndim=1)

# transmittance in front of each sample (T[0] = 1) and behind the last (T[S]), as compositing
_TRANSMITTANCE = per_row_kernel("""
    const long long S = in0_shape1;
    const in0_type* sig = in0_p + r * S;
    const in1_type* z = in1_p + r * S;
    const in2_type* d = in2_p + 3 * r;
    out0_type* T = out0_p + r * (S + 1);
    const double len = sqrt((double)d[0] * d[0] + (double)d[1] * d[1] + (double)d[2] * d[2]);
    double t = 1.0;
    T[0] = 1.f;
    for (long long i = 0; i < S; i++) {
        const double delta = (i < S - 1 ? (double)z[i + 1] - z[i] : 1e10) * len;
        t *= exp(-(sig[i] > 0 ? sig[i] * delta : 0.0));
        T[i + 1] = (float)t;
    }
""", "transmittance", "in0_shape0")


def transmittance(sigma, z, rays_d):
    """sigma_raw [R,S], z [R,S], rays_d [R,3] -> T [R,S+1]: before each sample, then behind all."""
    cpu, cuda = _TRANSMITTANCE
    n, s = sigma.shape
    return jt.code([n, s + 1], "float32", [sigma.float32(), z.float32(), rays_d.float32()],
                   cpu_src=cpu, cuda_src=cuda, cpu_header="#include <cmath>", cuda_header="#include <cmath>")


def padded_size(n):
    """n rounded up to a multiple of 1/16 of its power of two (at least 16): few distinct shapes."""
    g = max(16, 1 << max(int(n).bit_length() - 5, 0))
    return -(-int(n) // g) * g


def _scatter(values, index, size):
    """values [m, C] into zeros [size, C] at rows index (jt int32 [m], distinct but for padding rows)."""
    return values.reindex_reduce("add", [size, values.shape[1]], ["@e0(i0)", "i1"], extras=[index])


def _checked(opts):
    if opts.noise_std > 0:
        raise ValueError("the fast renderer is for renders without density noise (noise_std 0)")
    return opts


class Skipping:
    """Empty-space skipping (an OccupancyGrid) and early ray termination; RenderOptions.skip."""

    def __init__(self, grid, stop=STOP, per_round=PER_ROUND):
        if not 0.0 <= stop < 1.0 or per_round < 1:
            raise ValueError(f"Skipping: need 0 <= stop < 1 and per_round >= 1, got {stop}, {per_round}")
        self.grid, self.stop, self.per_round = grid, float(stop), int(per_round)
        self._vars = {}
        self.stats = collections.Counter()  # "<level>_evaluated" / "<level>_total" MLP rows

    def skipped_fraction(self, kind):
        total = self.stats[f"{kind}_total"]
        return 1.0 - self.stats[f"{kind}_evaluated"] / total if total else 0.0

    def occupied(self, level, pts):
        """bool NumPy [R,S] for points jt [R,S,3]: their cell is occupied (or outside the grid)."""
        if level not in self._vars:
            g = self.grid
            self._vars[level] = (jt.array(g.occupied[level].astype(np.uint8)),
                                 jt.array(np.concatenate([g.lo, g.hi]).astype(np.float32)))
        occ, box = self._vars[level]
        n_rays, n_samples = pts.shape[0], pts.shape[1]
        cpu, cuda = _LOOKUP
        mask = jt.code([n_rays * n_samples], "uint8", [pts.reshape((n_rays * n_samples, 3)).float32(), occ, box],
                       cpu_src=cpu, cuda_src=cuda)
        return mask.numpy().reshape(n_rays, n_samples).astype(bool)

    def march(self, level, evaluate, pts, z, rays_d, viewdirs=None, with_rgb=True):
        """sigma_raw [R,S] (and rgb [R,S,3] with with_rgb, else None) of the samples pts [R,S,3]
        at depths z, zero where not evaluated.  evaluate(pts [m,1,3], viewdirs [m,3] | None) ->
        (rgb [m,1,3] | None, sigma_raw [m,1])."""
        n_rays, n_samples = z.shape
        size = n_rays * n_samples
        occ = self.occupied(level, pts)
        occ[:, -1] = True  # its step is 1e10: any density there is opaque
        flat = np.flatnonzero(occ)
        rows = flat // n_samples
        counts = np.bincount(rows, minlength=n_rays)
        rank = (np.arange(len(flat)) - np.repeat(np.cumsum(counts) - counts, counts)).astype(np.int16)
        order = np.argsort(rank, kind="stable")  # radix sort: by rank, rows ascending within
        ends = np.searchsorted(rank[order], np.arange(self.per_round, n_samples + self.per_round, self.per_round))
        pts_ext = jt.concat([pts.reshape((size, 3)), jt.zeros((1, 3))])  # row `size`: padding
        vd_ext = None if viewdirs is None else jt.concat([viewdirs, jt.zeros((1, 3))])
        sigma = jt.zeros((size + 1, 1))
        rgb = jt.zeros((size + 1, 3)) if with_rgb else None
        alive = np.ones(n_rays, bool)
        self.stats[f"{level}_total"] += size
        begin = 0
        for end in ends:
            pick = order[begin:end]
            begin = end
            pick = pick[alive[rows[pick]]]
            if len(pick) == 0:
                continue
            m = padded_size(len(pick))
            index = np.full(m, size, np.int32)
            index[:len(pick)] = flat[pick]
            ray_index = np.full(m, n_rays, np.int32)
            ray_index[:len(pick)] = rows[pick]
            idx = jt.array(index)
            vd = None if vd_ext is None else vd_ext[jt.array(ray_index)]
            out_rgb, out_sigma = evaluate(pts_ext[idx].reshape((m, 1, 3)), vd)
            sigma = sigma + _scatter(out_sigma.reshape((m, 1)), idx, size + 1)
            if with_rgb:
                rgb = rgb + _scatter(out_rgb.reshape((m, 3)), idx, size + 1)
            self.stats[f"{level}_evaluated"] += m
            if end < len(flat):  # another round: which rays are still visible
                dense = sigma[:size].reshape((n_rays, n_samples))
                alive = transmittance(dense, z, rays_d)[:, n_samples].numpy() > self.stop
                if not alive.any():
                    break
        sigma = sigma[:size].reshape((n_rays, n_samples))
        return sigma, (rgb[:size].reshape((n_rays, n_samples, 3)) if with_rgb else None)

    def level(self, name, field, rays_o, rays_d, viewdirs, z, with_rgb, white_bkgd):
        """One level of render_rays: colour and density from field (plain callable), or the
        density alone (field.density) without with_rgb (no "rgb" key then)."""
        pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z.unsqueeze(-1)
        if with_rgb:
            sigma, rgb = self.march(name, field, pts, z, rays_d, viewdirs)
            out = composite(rgb, sigma, z, rays_d, white_bkgd=white_bkgd)
        else:
            sigma, _ = self.march(name, lambda p, v: (None, field.density(p)), pts, z, rays_d, with_rgb=False)
            out = composite(jt.zeros(tuple(sigma.shape) + (3,)), sigma, z, rays_d)
            del out["rgb"]
        out["z_vals"] = z
        return out

    def render_rays(self, rays_o, rays_d, viewdirs, coarse_field, fine_field, opts, share_color=False,
                    coarse_rgb=True):
        """render_rays (render/renderer.py) of an inference render: the same outputs."""
        o = _checked(opts)
        with jt.no_grad():
            z_vals = stratified_samples(o.near, o.far, o.n_samples, perturb=o.perturb, lindisp=o.lindisp,
                                        n_rays=rays_o.shape[0])
            fine_field = fine_field or coarse_field
            if share_color and o.n_fine > 0:
                geo = self.shared_geometry(coarse_field, fine_field, rays_o, rays_d, z_vals, o)
                return self.shared_colour(geo, lambda p, v: fine_field(p, v)[0], rays_d, viewdirs, o.white_bkgd)
            lean = not coarse_rgb and o.n_fine > 0 and hasattr(coarse_field, "density")
            out = {"coarse": self.level("coarse", coarse_field, rays_o, rays_d, viewdirs, z_vals, not lean,
                                        o.white_bkgd)}
            if o.n_fine > 0:
                z_all = hierarchical_z(z_vals, out["coarse"]["weights"], o.n_fine, deterministic=o.deterministic_fine)
                out["fine"] = self.level("fine", fine_field, rays_o, rays_d, viewdirs, z_all, True, o.white_bkgd)
            return out

    def _visible(self, sigma, z, rays_d):
        """bool NumPy [R,S]: samples with a non-zero weight in front of the termination point."""
        T = transmittance(sigma, z, rays_d)[:, :-1]
        return ((sigma > 0) & (T >= self.stop)).numpy()

    def shared_geometry(self, coarse_field, fine_field, rays_o, rays_d, z_vals, opts):
        """What every colour of a share_color render shares (renderer._shared_depths, plus the
        fine sigma and the samples that need a colour); both fields have .density."""
        _checked(opts)
        pts_c = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_vals.unsqueeze(-1)
        sigma_c, _ = self.march("coarse", lambda p, v: (None, coarse_field.density(p)), pts_c, z_vals, rays_d,
                                with_rgb=False)
        weights = composite(jt.zeros(tuple(sigma_c.shape) + (3,)), sigma_c, z_vals, rays_d)["weights"]
        z_all, coarse_at = hierarchical_z(z_vals, weights, opts.n_fine, deterministic=opts.deterministic_fine,
                                          with_coarse_index=True)
        pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_all.unsqueeze(-1)
        sigma_f, _ = self.march("fine", lambda p, v: (None, fine_field.density(p)), pts, z_all, rays_d,
                                with_rgb=False)
        need = self._visible(sigma_f, z_all, rays_d)
        need_c = self._visible(sigma_c, z_vals, rays_d)
        rows, cols = np.nonzero(need_c)
        need[rows, coarse_at.numpy()[rows, cols]] = True  # the coarse colours are read from there
        return dict(z_vals=z_vals, sigma_c=sigma_c, z_all=z_all, coarse_at=coarse_at, pts=pts, sigma_f=sigma_f,
                    colour_at=np.flatnonzero(need))

    def shared_colour(self, geo, colour, rays_d, viewdirs, white_bkgd):
        """{"coarse", "fine"} of one colour(pts [m,1,3], viewdirs [m,3] | None) -> rgb [m,1,3]
        over shared_geometry, evaluated where a colour is needed."""
        from render.renderer import composite_shared
        n_rays, n_samples = geo["z_all"].shape
        size = n_rays * n_samples
        self.stats["colour_total"] += size
        m = padded_size(max(len(geo["colour_at"]), 1))
        index = np.full(m, size, np.int32)
        index[:len(geo["colour_at"])] = geo["colour_at"]
        idx = jt.array(index)
        pts = jt.concat([geo["pts"].reshape((size, 3)), jt.zeros((1, 3))])[idx].reshape((m, 1, 3))
        vd = None
        if viewdirs is not None:
            ray_index = np.minimum(index // n_samples, n_rays)
            vd = jt.concat([viewdirs, jt.zeros((1, 3))])[jt.array(ray_index.astype(np.int32))]
        rgb = _scatter(colour(pts, vd).reshape((m, 3)), idx, size + 1)[:size].reshape((n_rays, n_samples, 3))
        self.stats["colour_evaluated"] += m
        return composite_shared(geo, rgb, rays_d, white_bkgd)


def fast_options(opts, args, scene, fields, expdir, step, settings=None, log=print):
    """opts with the fast renderer when args.render_mode is "fast" (else opts unchanged): the
    occupancy grid of the NeRF checkpoint `step` in expdir (cached there), fields = the
    (coarse, fine) NeRFFields of that checkpoint."""
    import dataclasses

    from render.occupancy import GridSettings, load_or_build, scene_box
    if getattr(args, "render_mode", "exact") != "fast":
        return opts
    lo, hi = scene_box(scene.hwf, scene.poses, opts.near, opts.far, ndc=not args.no_ndc)
    densities = {"coarse": fields[0].density, "fine": fields[1].density}
    grid = load_or_build(expdir, step, densities, lo, hi, opts.n_samples, settings or GridSettings(), log=log)
    return dataclasses.replace(opts, skip=Skipping(grid))
