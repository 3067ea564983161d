"""The fast renderer: the exact renderer's samples, but the MLPs run only where they matter.

Rendering (no gradients) keeps every sample position of the exact coarse + fine renderer (so
hierarchical sampling is unchanged) and evaluates the MLPs at a sample only if
- its cell of the NeRF's occupancy grid (render/occupancy.py) is occupied - an empty cell's
  density gives less than the grid's alpha (1e-4) of opacity, so its sigma is taken as 0
  (the last sample of a ray, whose step is 1e10, is always evaluated); and
- the ray's transmittance in front of it is still above `stop` (1e-4; early ray termination:
  everything behind carries less than that weight in total).
The samples that pass are compacted into one dense batch per round, on the device (the host
reads only each ray's count: render/march_kernels.py), and their results scattered back; samples not evaluated get sigma 0 (and colour 0, which their zero weight
ignores), and the exact compositing kernel composites the full rows.  A ray's occupied samples
are evaluated in rounds, front to back, and only rays still visible go on to the next: the
fine level first evaluates all those in front of where the coarse level turned opaque (usually
all it needs), then, as the coarse level from the start, `per_round` more a round.

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

from render.compositing import composite
from render.march_kernels import colour_mask, occupancy, select, transmittance
from render.samplers import hierarchical_z, stratified_samples

STOP = 1e-4       # early termination: transmittance below which a ray is finished
FULL = 0.99       # a grid at least this occupied leaves nothing to skip: the exact renderer renders
PER_ROUND = 16    # occupied samples per ray evaluated per round (after the fine level's first)
_ALL = 1e9        # no quota


def _scatter(values, index, size):
    """values [m, C] into zeros [size, C] at rows index (jt int32 [m], distinct but for padding rows)."""
    return values.reindex_reduce("add", [size, values.shape[1]], ["@e0(i0)", "i1"], extras=[index])


def _gather(x, index):
    """Rows index (int32 [m]; len(x) = padding) of x [n, C] and a zero row after it."""
    return jt.concat([x, jt.zeros((1, x.shape[1]))])[index]


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
        self._grid_vars = None
        self.stats = collections.Counter()  # "<level>_evaluated" / "<level>_total" MLP rows

    def skipped_fraction(self, kind):
        total = self.stats[f"{kind}_total"]
        return 1.0 - self.stats[f"{kind}_evaluated"] / total if total else 0.0

    def occupied(self, pts):
        """uint8 [R,S] for points jt [R,S,3]: their cell is occupied (or outside the grid)."""
        if self._grid_vars is None:
            g = self.grid
            self._grid_vars = (jt.array(g.occupied.astype(np.uint8)),
                               jt.array(np.concatenate([g.lo, g.hi]).astype(np.float32)))
        n_rays, n_samples = pts.shape[0], pts.shape[1]
        return occupancy(*self._grid_vars, pts.reshape((n_rays * n_samples, 3))).reshape((n_rays, n_samples))

    def march(self, level, evaluate, pts, z, rays_d, viewdirs=None, with_rgb=True, limit=None):
        """sigma_raw [R,S] (and rgb [R,S,3] with with_rgb, else None) of the samples pts [R,S,3]
        at depths z, zero where not evaluated.  evaluate(pts [m,1,3], viewdirs [m,3] | None) ->
        (rgb [m,1,3] | None, sigma_raw [m,1]).  limit [R]: the first round evaluates every
        occupied sample in front of it (the fine level: where the coarse level turned opaque)."""
        n_rays, n_samples = z.shape
        size = n_rays * n_samples
        occ = self.occupied(pts)
        pts_flat = pts.reshape((size, 3))
        sigma = jt.zeros((size + 1, 1))
        rgb = jt.zeros((size + 1, 3)) if with_rgb else None
        cursor = jt.zeros((n_rays,), dtype="int32")
        visible = jt.ones((n_rays,))
        no_limit = jt.full((n_rays,), float("inf"))
        self.stats[f"{level}_total"] += size
        for k in range(n_samples + 1):
            first = k == 0 and limit is not None
            index, ray, n, cursor = select(occ, cursor, limit if first else no_limit, z, visible,
                                           _ALL if first else self.per_round, self.stop, force_last=True)
            if n == 0:
                if first:
                    continue
                break
            m = index.shape[0]
            vd = None if viewdirs is None else _gather(viewdirs, ray)
            out_rgb, out_sigma = evaluate(_gather(pts_flat, index).reshape((m, 1, 3)), vd)
            sigma = sigma + _scatter(out_sigma.reshape((m, 1)), index, size + 1)
            if with_rgb:
                rgb = rgb + _scatter(out_rgb.reshape((m, 3)), index, size + 1)
            self.stats[f"{level}_evaluated"] += m
            # which rays are still visible (a ray's last sample, step 1e10, makes it opaque)
            visible = transmittance(sigma[:size].reshape((n_rays, n_samples)), z, rays_d)[:, n_samples]
        sigma = sigma[:size].reshape((n_rays, n_samples))
        return sigma, (rgb[:size].reshape((n_rays, n_samples, 3)) if with_rgb else None)

    def front(self, sigma_c, z_vals, rays_d):
        """[R]: the depth of each ray's first coarse sample behind which the coarse level's
        transmittance is below stop (inf where it never is): the fine level's first round."""
        n_rays, n_samples = z_vals.shape
        visible = (transmittance(sigma_c, z_vals, rays_d)[:, :n_samples] >= self.stop).int32().sum(1)
        z_ext = jt.concat([z_vals, jt.full((n_rays, 1), float("inf"))], 1)
        return z_ext.reindex([n_rays], ["i0", "@e0(i0)"], extras=[visible])

    def level(self, name, field, rays_o, rays_d, viewdirs, z, with_rgb, white_bkgd, limit=None):
        """One level of render_rays and its sigma_raw: colour and density from field (plain
        callable), or the density alone (field.density) without with_rgb (no "rgb" key then)."""
        pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z.unsqueeze(-1)
        if with_rgb:
            sigma, rgb = self.march(name, field, pts, z, rays_d, viewdirs, limit=limit)
            out = composite(rgb, sigma, z, rays_d, white_bkgd=white_bkgd)
        else:
            sigma, _ = self.march(name, lambda p, v: (None, field.density(p)), pts, z, rays_d, with_rgb=False,
                                  limit=limit)
            out = composite(jt.zeros(tuple(sigma.shape) + (3,)), sigma, z, rays_d)
            del out["rgb"]
        out["z_vals"] = z
        return out, sigma

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
            coarse, sigma_c = self.level("coarse", coarse_field, rays_o, rays_d, viewdirs, z_vals, not lean,
                                         o.white_bkgd)
            out = {"coarse": coarse}
            if o.n_fine > 0:
                z_all = hierarchical_z(z_vals, coarse["weights"], o.n_fine, deterministic=o.deterministic_fine)
                out["fine"], _ = self.level("fine", fine_field, rays_o, rays_d, viewdirs, z_all, True, o.white_bkgd,
                                            limit=self.front(sigma_c, z_vals, rays_d))
            return out

    def _seen(self, sigma, z, rays_d):
        """uint8 [R,S]: samples with a non-zero weight in front of the termination point."""
        T = transmittance(sigma, z, rays_d)[:, :-1]
        return ((sigma > 0) & (T >= self.stop)).uint8()

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
                                with_rgb=False, limit=self.front(sigma_c, z_vals, rays_d))
        # the coarse colours are read at coarse_at: those samples need one too
        need = colour_mask(self._seen(sigma_f, z_all, rays_d), self._seen(sigma_c, z_vals, rays_d), coarse_at)
        n_rays = need.shape[0]
        index, ray, n, _ = select(need, jt.zeros((n_rays,), dtype="int32"), jt.full((n_rays,), float("inf")), z_all,
                                  jt.ones((n_rays,)), _ALL, -1.0, force_last=False)
        return dict(z_vals=z_vals, sigma_c=sigma_c, z_all=z_all, coarse_at=coarse_at, pts=pts, sigma_f=sigma_f,
                    colour_index=index, colour_ray=ray)

    def shared_colour(self, geo, colour, rays_d, viewdirs, white_bkgd):
        """{"coarse", "fine"} of one colour(pts [m,1,3], viewdirs [m,3] | None) -> rgb [m,1,3]
        over shared_geometry, evaluated where a colour is needed."""
        from render.renderer import composite_shared
        n_rays, n_samples = geo["z_all"].shape
        size = n_rays * n_samples
        self.stats["colour_total"] += size
        rgb = jt.zeros((n_rays, n_samples, 3))
        index = geo["colour_index"]
        if index is not None:  # else no sample of the chunk is seen
            m = index.shape[0]
            vd = None if viewdirs is None else _gather(viewdirs, geo["colour_ray"])
            values = colour(_gather(geo["pts"].reshape((size, 3)), index).reshape((m, 1, 3)), vd)
            rgb = _scatter(values.reshape((m, 3)), index, size + 1)[:size].reshape((n_rays, n_samples, 3))
            self.stats["colour_evaluated"] += m
        return composite_shared(geo, rgb, rays_d, white_bkgd)


def grid_resolution(n_samples):
    """Cells per axis: about half the coarse spacing of a ray crossing the box (fern: 64 samples,
    128 cells), from 16 to 256."""
    return int(min(max(2 * int(n_samples), 16), 256))


def fast_options(opts, args, scene, fields, expdir, step, log=print, *, settings=None):
    """opts with the fast renderer when args.render_mode is "fast" (else opts unchanged): the
    occupancy grid of the NeRF checkpoint `step` in expdir (cached there; settings default:
    GridSettings at grid_resolution(opts.n_samples)), fields = the (coarse, fine) NeRFFields of
    that checkpoint.  A top_k render (--style_render_samples) takes its samples from the skipping
    geometry too: the samples it leaves out are in empty cells or behind the point where the ray
    turned opaque, whose weights are below the termination threshold.
    A grid at least FULL occupied (a NeRF early in training: fog everywhere, nothing skipped and
    nothing opaque) keeps opts exact: its rounds would cost more than they save (the tiny
    pipeline's geometry stage on the CPU, 2026-12-07: 73.0 s fast against 54.9 s exact)."""
    import dataclasses

    from render.occupancy import GridSettings, load_or_build, scene_box
    if getattr(args, "render_mode", "exact") != "fast":
        return opts
    lo, hi = scene_box(scene.hwf, scene.poses, opts.near, opts.far, ndc=not args.no_ndc)
    densities = [field.density for field in fields]
    settings = settings or GridSettings(resolution=grid_resolution(opts.n_samples))
    grid = load_or_build(expdir, step, densities, lo, hi, opts.n_samples, settings, log=log)
    if grid.fraction >= FULL:
        log(f"occupancy grid {100 * grid.fraction:.1f}% occupied: nothing to skip, the exact renderer renders")
        return opts
    return dataclasses.replace(opts, skip=Skipping(grid))
