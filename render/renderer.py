"""Coarse + fine ray rendering over "fields", chunked image rendering, expected 3D points.

A field is any callable `field(pts [R,S,3], viewdirs [R,3] | None) -> (rgb [R,S,3] in [0,1],
sigma_raw [R,S])`.  The renderer does not know what is behind it (NeRF with its colour head,
or the frozen NeRF's density with the style MLP's colour), which is how the style stage reuses it;
a field that also has `density(pts) -> sigma_raw` can share the fine level's colours
(render_rays' share_color).  How rays are sampled and composited: a RenderOptions
(render/options.py), passed as opts.
"""
import dataclasses

import jittor as jt
import numpy as np

from render.cached_samples import cached_points, composite_cached, top_samples
from render.compositing import composite
from render.options import RenderOptions
from render.samplers import hierarchical_z, stratified_samples


class NeRFField:
    """A field from a NeRF and its encoders (embed_dir None when the NeRF has no view directions)."""

    def __init__(self, model, embed_xyz, embed_dir=None):
        if model.use_viewdirs and embed_dir is None:
            raise ValueError("NeRFField: the NeRF uses view directions, so embed_dir is needed")
        self.model, self.embed_xyz, self.embed_dir = model, embed_xyz, embed_dir

    def density(self, pts):
        """pts [R,S,3] -> sigma_raw [R,S] (no colour head: render_rays' coarse_rgb=False)."""
        n_rays, n_samples = pts.shape[0], pts.shape[1]
        sigma_raw, _ = self.model.density(self.embed_xyz(pts.reshape((n_rays * n_samples, 3))))
        return sigma_raw.reshape((n_rays, n_samples))

    def __call__(self, pts, viewdirs=None):
        n_rays, n_samples = pts.shape[0], pts.shape[1]
        n_pts = n_rays * n_samples
        sigma_raw, feature = self.model.density(self.embed_xyz(pts.reshape((n_pts, 3))))
        dir_emb = None
        if self.model.use_viewdirs:
            if viewdirs is None:
                raise ValueError("NeRFField: this NeRF needs view directions (viewdirs is None)")
            emb = self.embed_dir(viewdirs)                    # encode once per ray, not per sample
            dir_emb = emb.unsqueeze(1).broadcast((n_rays, n_samples, emb.shape[-1])).reshape((n_pts, emb.shape[-1]))
        rgb = self.model.color(feature, dir_emb)
        return rgb.reshape((n_rays, n_samples, 3)), sigma_raw.reshape((n_rays, n_samples))


def _as_var(x):
    return x if isinstance(x, jt.Var) else jt.array(np.asarray(x, dtype=np.float32))


def _render_level(field, rays_o, rays_d, viewdirs, z_vals, noise_std, white_bkgd):
    pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_vals.unsqueeze(-1)   # [R, S, 3]
    rgb, sigma_raw = field(pts, viewdirs)
    out = composite(rgb, sigma_raw, z_vals, rays_d, noise_std=noise_std, white_bkgd=white_bkgd)
    out["z_vals"] = z_vals
    return out


def _check_options(opts, where):
    if not isinstance(opts, RenderOptions):
        raise TypeError(f"{where}: opts must be a RenderOptions (render/options.py), got {type(opts).__name__}")


def render_rays(rays_o, rays_d, viewdirs, coarse_field, fine_field=None, *, opts, share_color=False,
                coarse_rgb=True):
    """Render rays_o, rays_d [R,3] (viewdirs [R,3] or None) as opts (a RenderOptions) says.

    Returns {"coarse": level, "fine": level} ("fine" only when opts.n_fine > 0), each level a dict
    of rgb [R,3], depth [R], acc [R], weights [R,S], z_vals [R,S] (S = n_samples, or
    n_samples + n_fine for the fine level).  opts.near/far: floats or [R].  The fine samples come
    from the detached coarse weights, deterministically by default (as the original StylizedNeRF;
    nerf-pytorch randomises them when perturb is on).  fine_field None reuses the coarse field.

    share_color: both levels have the same colour function (the style stage: one style MLP, two
    frozen densities) and coarse_field has `.density(pts) -> sigma_raw`; colour is then
    evaluated once, at the fine level's depths, which hold every coarse depth exactly, and the
    coarse colours are gathered from there: the same result with a third fewer colour-MLP
    points (fern: the fine level's 128 instead of 64 + 128) and one MLP pass instead of two.

    coarse_rgb=False (with n_fine > 0): the coarse level is computed for its weights, depth and
    acc only - no colour head, no "rgb" key - for renders that keep the fine image alone
    (geometry data), where coarse_field has `.density` (a plain callable renders as usual).
    """
    _check_options(opts, "render_rays")
    o = opts
    rays_o, rays_d = _as_var(rays_o), _as_var(rays_d)
    viewdirs = None if viewdirs is None else _as_var(viewdirs)
    n_rays = rays_o.shape[0]
    if tuple(rays_o.shape) != (n_rays, 3) or tuple(rays_d.shape) != (n_rays, 3):
        raise ValueError(f"render_rays: rays_o and rays_d must be [R,3], got {rays_o.shape} and {rays_d.shape}")
    if o.top_k:
        if not (share_color and o.n_fine > 0):
            raise ValueError("render_rays: top_k renders need share_color and fine samples (the style field)")
        geo = _frozen_geometry(coarse_field, fine_field or coarse_field, rays_o, rays_d, o)
        return composite_top_k(top_k_samples(geo, rays_d, o.top_k, o.surface), (fine_field or coarse_field).colors,
                               rays_o, rays_d, o.white_bkgd)
    if o.skip is not None:  # the fast renderer (no gradients)
        return o.skip.render_rays(rays_o, rays_d, viewdirs, coarse_field, fine_field, o, share_color=share_color,
                                  coarse_rgb=coarse_rgb)
    z_vals = stratified_samples(o.near, o.far, o.n_samples, perturb=o.perturb, lindisp=o.lindisp, n_rays=n_rays)
    if share_color and o.n_fine > 0:
        return _render_shared_color(coarse_field, fine_field or coarse_field, rays_o, rays_d, viewdirs, z_vals,
                                    o.n_fine, o.noise_std, o.white_bkgd, o.deterministic_fine)
    if not coarse_rgb and o.n_fine > 0 and hasattr(coarse_field, "density"):
        out = {"coarse": _density_level(coarse_field, rays_o, rays_d, z_vals, o.noise_std)[0]}
    else:
        out = {"coarse": _render_level(coarse_field, rays_o, rays_d, viewdirs, z_vals, o.noise_std, o.white_bkgd)}
    if o.n_fine > 0:
        z_all = hierarchical_z(z_vals, out["coarse"]["weights"].detach(), o.n_fine,
                               deterministic=o.deterministic_fine)
        field = coarse_field if fine_field is None else fine_field
        out["fine"] = _render_level(field, rays_o, rays_d, viewdirs, z_all, o.noise_std, o.white_bkgd)
    return out


def _noised(sigma, noise_std):
    """sigma_raw plus one N(0, noise_std^2) draw (the training regulariser; none at 0)."""
    return sigma + jt.randn(sigma.shape, dtype="float32") * noise_std if noise_std > 0 else sigma


def _density_level(field, rays_o, rays_d, z_vals, noise_std):
    """A level without colour (weights, depth, acc, z_vals) and the (noised) sigma_raw it used."""
    # noise drawn here once, so that a caller can composite the same sigma again
    sigma = _noised(field.density(rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_vals.unsqueeze(-1)), noise_std)
    no_rgb = jt.zeros(tuple(sigma.shape) + (3,), dtype="float32")  # the weights depend on sigma only
    out = composite(no_rgb, sigma, z_vals, rays_d)
    del out["rgb"]
    out["z_vals"] = z_vals
    return out, sigma


def _shared_depths(coarse_field, rays_o, rays_d, z_vals, n_fine, noise_std, deterministic_fine):
    """What every colour of a share_color render has in common, but the fine sigma: the coarse
    level's (noised) sigma_raw, the fine depths (holding each coarse depth, at coarse_at) and the
    fine points."""
    density, sigma_c = _density_level(coarse_field, rays_o, rays_d, z_vals, noise_std)
    z_all, coarse_at = hierarchical_z(z_vals, density["weights"].detach(), n_fine,
                                      deterministic=deterministic_fine, with_coarse_index=True)
    pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_all.unsqueeze(-1)
    return dict(z_vals=z_vals, sigma_c=sigma_c, z_all=z_all, coarse_at=coarse_at, pts=pts)


def _shared_geometry(coarse_field, fine_field, rays_o, rays_d, opts, z_vals=None):
    """_shared_depths with the fine level's (noised) sigma_raw, geo["sigma_f"]: everything of a
    shared-colour render but its colours.  z_vals: the coarse depths (default: drawn as opts say)."""
    if z_vals is None:
        z_vals = stratified_samples(opts.near, opts.far, opts.n_samples, perturb=opts.perturb, lindisp=opts.lindisp,
                                    n_rays=rays_o.shape[0])
    geo = _shared_depths(coarse_field, rays_o, rays_d, z_vals, opts.n_fine, opts.noise_std, opts.deterministic_fine)
    geo["sigma_f"] = _noised(fine_field.density(geo["pts"]), opts.noise_std)
    return geo


def _frozen_geometry(coarse_field, fine_field, rays_o, rays_d, opts, z_vals=None):
    """_shared_geometry, or with opts.skip the fast renderer's (densities only in occupied cells in
    front of where the ray turns opaque; no gradients: the densities are frozen wherever it is used)."""
    if opts.skip is None:
        return _shared_geometry(coarse_field, fine_field, rays_o, rays_d, opts, z_vals)
    if z_vals is None:
        z_vals = stratified_samples(opts.near, opts.far, opts.n_samples, perturb=opts.perturb,
                                    lindisp=opts.lindisp, n_rays=rays_o.shape[0])
    with jt.no_grad():
        return opts.skip.shared_geometry(coarse_field, fine_field, rays_o, rays_d, z_vals, opts)


def composite_shared(geo, samples_rgb, rays_d, white_bkgd):
    """{"coarse", "fine"} levels of one colour (samples_rgb [R, S+n_fine, 3] at the fine depths) over
    _shared_depths and the fine sigma geo["sigma_f"]; the coarse colours are gathered from the
    fine samples at the coarse depths."""
    fine = composite(samples_rgb, geo["sigma_f"], geo["z_all"], rays_d, white_bkgd=white_bkgd)
    fine["z_vals"] = geo["z_all"]
    n_rays, n_coarse = geo["coarse_at"].shape
    rgb_c = samples_rgb.reindex([n_rays, n_coarse, 3], ["i0", "@e0(i0,i1)", "i2"], extras=[geo["coarse_at"]])
    coarse = composite(rgb_c, geo["sigma_c"], geo["z_vals"], rays_d, white_bkgd=white_bkgd)
    coarse["z_vals"] = geo["z_vals"]
    return {"coarse": coarse, "fine": fine}


def _levels_without_colour(geo, rays_d, n_samples):
    """The coarse and fine levels (weights, depth, acc) of a shared-colour geometry, no colour."""
    none = jt.zeros(tuple(geo["sigma_f"].shape) + (3,), dtype="float32")
    return (composite(none[:, :n_samples], geo["sigma_c"], geo["z_vals"], rays_d),
            composite(none, geo["sigma_f"], geo["z_all"], rays_d))


def _level_weights(geo, rays_d, n_samples):
    """NumPy (z_all, coarse weights, fine weights, coarse depth, fine depth, coarse acc, fine acc)
    of a shared-colour geometry (_shared_depths with its fine sigma): both levels' weights at the
    fine depths [R, S+n_fine] (each coarse sample's weight at its place among them, 0 elsewhere)."""
    coarse, fine = _levels_without_colour(geo, rays_d, n_samples)
    parts = [geo["z_all"], coarse["weights"], fine["weights"], geo["coarse_at"], coarse["depth"], fine["depth"],
             coarse["acc"], fine["acc"]]
    jt.sync(parts)
    z_all, w_c, w_f, at, d_c, d_f, a_c, a_f = (x.numpy() for x in parts)
    w_c_all = np.zeros_like(w_f)
    np.put_along_axis(w_c_all, at.astype(np.int64), w_c, axis=1)
    return z_all, w_c_all, w_f, d_c, d_f, a_c, a_f


def top_k_samples(geo, rays_d, k, surface=False):
    """What every colour of a top-k render shares: each ray's k heaviest samples of a shared-colour
    geometry (_shared_depths with its fine sigma) - their depths and both levels' weights, rescaled
    to each level's opacity (top_samples) - and the full levels' depth and acc, as jt Vars (selected
    on the host, or for k = 1 on the device: one_point_samples), put on the device once for every
    colour that composite_top_k gives them."""
    if int(k) == 1:
        return one_point_samples(geo, rays_d, surface)
    z_all, w_c, w_f, d_c, d_f, a_c, a_f = _level_weights(geo, rays_d, geo["z_vals"].shape[1])
    z, w_c, w_f, _ = top_samples(z_all, w_c, w_f, min(int(k), z_all.shape[1]), surface)
    z, w_c, w_f, d_c, d_f, a_c, a_f = (jt.array(a) for a in (z, w_c, w_f, d_c, d_f, a_c, a_f))
    return dict(z=z, w_coarse=w_c, w_fine=w_f, depth=(d_c, d_f), acc=(a_c, a_f))


def row_argmax(x2d):
    """x2d [N,M] -> (index [N] int32, value [N]): each row's largest value and the index of its
    first occurrence, as np.argmax gives it.  jt.argmax would do the same, but on the GPU it is a
    cub reduction, and cub needs C++17 where Jittor 1.3.11 builds CUDA as C++14 (the build fails
    on CUDA 13, backend/runtime.py); a max, a compare and a min over the column indices are
    Jittor's own fused reductions.  A row holding NaN gives index 0.  Not differentiable."""
    if x2d.ndim != 2 or x2d.shape[1] < 1:
        raise ValueError(f"row_argmax: a [N,M] array with M >= 1 expected, got {tuple(x2d.shape)}")
    n_cols = int(x2d.shape[1])
    value = x2d.max(dim=1)
    cols = jt.arange(n_cols).int32().unsqueeze(0).broadcast(x2d.shape)
    first = jt.where(x2d >= value.unsqueeze(1), cols, jt.int32(n_cols)).min(dim=1)
    return jt.where(first < n_cols, first, jt.int32(0)).stop_grad(), value


def one_point_samples(geo, rays_d, surface=False):
    """top_k_samples for k = 1 on the device, as top_samples selects (render/cached_samples.py):
    each ray's heaviest sample by coarse + fine weight (the first of equals), or with surface its
    expected depth under the fine weights (the heaviest where the fine level has no opacity), and
    each level's whole opacity there.  Only [R] arrays are made: a 504x378 view of 64 + 64 samples
    took the host 0.3-0.5 s to fetch, place and select the full [R, S+n_fine] weights
    (bench/bench_sample_selection.py).  The sums run in float32 (top_samples: float64)."""
    coarse, fine = _levels_without_colour(geo, rays_d, geo["z_vals"].shape[1])
    w_f, z_all = fine["weights"], geo["z_all"]
    n_rays, n_all = w_f.shape
    w_c_all = jt.zeros((n_rays, n_all), dtype="float32").scatter_(1, geo["coarse_at"], coarse["weights"])
    keep, heaviest = row_argmax(w_c_all + w_f)
    z = z_all.reindex([n_rays], ["i0", "@e0(i0)"], extras=[keep])
    # one sample holds a level's whole opacity, unless the ray has no weight at all (top_samples)
    has = (heaviest > 0).float32()
    w_c, opacity = coarse["weights"].sum(1) * has, w_f.sum(1)
    if surface:
        expected = (w_f * z_all).sum(1) / jt.clamp(opacity, min_v=1e-30)
        z = jt.where(opacity > 1e-6, expected, z)
    return dict(z=z.unsqueeze(1), w_coarse=w_c.unsqueeze(1), w_fine=(opacity * has).unsqueeze(1),
                depth=(coarse["depth"], fine["depth"]), acc=(coarse["acc"], fine["acc"]))


def composite_top_k(kept, colors, rays_o, rays_d, white_bkgd):
    """{"coarse", "fine"} levels (rgb, depth, acc) coloured at top_k_samples' depths only;
    colors(pts [R,K,3]) -> rgb [R,K,3].  Depth and acc are the full levels' (the geometry is
    unchanged)."""
    out = composite_cached(colors(cached_points(rays_o, rays_d, kept["z"])), kept["w_coarse"], kept["w_fine"],
                           white_bkgd)
    for i, level in enumerate(("coarse", "fine")):
        out[level]["depth"], out[level]["acc"] = kept["depth"][i], kept["acc"][i]
    return out


def _render_shared_color(coarse_field, fine_field, rays_o, rays_d, viewdirs, z_vals, n_fine, noise_std,
                         white_bkgd, deterministic_fine):
    """render_rays with share_color: coarse density -> fine depths -> colour once (see there)."""
    geo = _shared_depths(coarse_field, rays_o, rays_d, z_vals, n_fine, noise_std, deterministic_fine)
    samples_rgb, sigma_f = fine_field(geo["pts"], viewdirs)
    geo["sigma_f"] = _noised(sigma_f, noise_std)
    return composite_shared(geo, samples_rgb, rays_d, white_bkgd)


def _flat_rays(x, n_pix, name, where):
    """NumPy/jt rays [H,W,3] or [H*W,3] (or None) -> float32 NumPy [H*W,3]."""
    if x is None:
        return None
    x = x.numpy() if isinstance(x, jt.Var) else np.asarray(x)
    x = x.reshape(-1, x.shape[-1]).astype(np.float32, copy=False)
    if x.shape != (n_pix, 3):
        raise ValueError(f"{where}: {name} must hold H*W={n_pix} rays of 3 values, got {x.shape}")
    return x


def _store_chunk(results, out, keys, start, end, n_pix):
    """Fetch a chunk's requested outputs (one run for all of them) into results[(level, key)]."""
    wanted = [(level, key) for level in out for key in keys if key in out[level]]
    jt.sync([out[level][key] for level, key in wanted])
    for level, key in wanted:
        value = out[level][key].numpy()
        if (level, key) not in results:  # allocate once the shape is known
            results[(level, key)] = np.empty((n_pix,) + value.shape[1:], np.float32)
        results[(level, key)][start:end] = value


def _as_images(results, H, W):
    images = {}
    for (level, key), arr in results.items():
        images.setdefault(level, {})[key] = arr.reshape((int(H), int(W)) + arr.shape[1:])
    return images


def render_image_colors(rays_o, rays_d, H, W, chunk, coarse_field, fine_field, n_colors, *, opts,
                        keys=("rgb", "depth")):
    """An image in n_colors colourings of one geometry (the style MLP with several latent codes):
    the same result as render_image(..., share_color=True) once per colour, but the densities,
    the fine depths and their sigma are computed once per chunk for all colours.

    fine_field: `.density(pts) -> sigma_raw [R,S]` and `.color(pts, k) -> rgb [R,S,3]` for colour
    k < n_colors; coarse_field: `.density`.  No view directions (the style fields take none).
    Returns a list of n_colors {"coarse": {key: [H,W,...]}, "fine": {...}} of NumPy arrays.
    Memory: each colour's MLP runs (and is fetched) before the next starts.  opts.near/far: floats.
    """
    _check_options(opts, "render_image_colors")
    o = opts
    if o.n_fine < 1:
        raise ValueError("render_image_colors: the shared-colour render needs fine samples (n_fine >= 1)")
    n_pix = int(H) * int(W)
    ro, rd = (_flat_rays(x, n_pix, name, "render_image_colors") for x, name in ((rays_o, "rays_o"), (rays_d, "rays_d")))
    results = [dict() for _ in range(n_colors)]
    with jt.no_grad():
        for start in range(0, n_pix, int(chunk)):
            end = min(start + int(chunk), n_pix)
            origins, d = jt.array(ro[start:end]), jt.array(rd[start:end])
            z_vals = stratified_samples(o.near, o.far, o.n_samples, perturb=o.perturb, lindisp=o.lindisp,
                                        n_rays=end - start)
            geo = _frozen_geometry(coarse_field, fine_field, origins, d, o, z_vals)
            jt.sync([v for v in geo.values() if isinstance(v, jt.Var)])  # once for every colour
            kept = top_k_samples(geo, d, o.top_k, o.surface) if o.top_k else None
            for k in range(n_colors):
                if o.top_k:
                    out = composite_top_k(kept, lambda pts, k=k: fine_field.color(pts, k), origins, d, o.white_bkgd)
                elif o.skip is not None:
                    out = o.skip.shared_colour(geo, lambda pts, _, k=k: fine_field.color(pts, k), d, None,
                                               o.white_bkgd)
                else:
                    out = composite_shared(geo, fine_field.color(geo["pts"], k), d, o.white_bkgd)
                _store_chunk(results[k], out, keys, start, end, n_pix)
    return [_as_images(res, H, W) for res in results]


def render_image(rays_o, rays_d, viewdirs, H, W, chunk, *, opts, coarse_field, fine_field=None,
                 keys=("rgb", "depth", "acc"), share_color=False, coarse_rgb=True):
    """Render an image's rays in chunks without gradients; returns NumPy arrays.

    rays_o, rays_d, viewdirs: [H,W,3] or [H*W,3] (NumPy or jt; viewdirs may be None).
    opts, the fields, share_color and coarse_rgb go to render_rays (opts.near/far may be per-ray
    arrays of H*W values).  Returns {"coarse": {key: [H,W,...]}, "fine": {...}} for the
    requested keys (rgb [H,W,3], depth [H,W], acc [H,W], weights/z_vals [H,W,S]).
    """
    _check_options(opts, "render_image")
    n_pix = int(H) * int(W)
    ro, rd, vd = (_flat_rays(x, n_pix, name, "render_image")
                  for x, name in ((rays_o, "rays_o"), (rays_d, "rays_d"), (viewdirs, "viewdirs")))
    if int(chunk) < 1:
        raise ValueError(f"render_image: chunk must be >= 1, got {chunk}")
    per_ray = {k: np.asarray(getattr(opts, k), np.float32).reshape(-1) for k in ("near", "far")
               if not np.isscalar(getattr(opts, k))}
    results = {}
    with jt.no_grad():
        for start in range(0, n_pix, int(chunk)):
            end = min(start + int(chunk), n_pix)
            chunk_opts = dataclasses.replace(opts, **{k: v[start:end] for k, v in per_ray.items()})
            out = render_rays(jt.array(ro[start:end]), jt.array(rd[start:end]),
                              None if vd is None else jt.array(vd[start:end]), coarse_field, fine_field,
                              opts=chunk_opts, share_color=share_color, coarse_rgb=coarse_rgb)
            _store_chunk(results, out, keys, start, end, n_pix)
    return _as_images(results, H, W)


def expected_points(rays_o, rays_d, depth):
    """3D points at the expected depth: rays_o, rays_d [..., 3], depth [...] -> [..., 3] (NumPy or jt)."""
    if isinstance(depth, jt.Var):
        return _as_var(rays_o) + _as_var(rays_d) * depth.unsqueeze(-1)
    return np.asarray(rays_o) + np.asarray(rays_d) * np.asarray(depth)[..., None]


def shared_weights(coarse_field, fine_field, rays_o, rays_d, opts):
    """The compositing weights of a share_color render, without colour: (z_all [R, S+n_fine],
    coarse weights [R, S+n_fine] (each coarse sample's weight at its place among the fine
    depths, 0 elsewhere), fine weights [R, S+n_fine]) as NumPy float32.  A share_color render's
    levels are then rgb = sum_i w_i c(o + z_i d) with these w and one colour per depth
    (render/cached_samples.py).  Needs opts.n_fine > 0 and fields with `.density`."""
    _check_options(opts, "shared_weights")
    if opts.n_fine < 1:
        raise ValueError("shared_weights: the shared-colour weights need fine samples (n_fine >= 1)")
    rays_o, rays_d = _as_var(rays_o), _as_var(rays_d)
    with jt.no_grad():
        return _level_weights(_shared_geometry(coarse_field, fine_field, rays_o, rays_d, opts), rays_d,
                              opts.n_samples)[:3]
