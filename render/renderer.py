"""Coarse + fine ray rendering over "fields", chunked image rendering, expected 3D points.

A field is any callable `field(pts [R,S,3], viewdirs [R,3] | None) -> (rgb [R,S,3] in [0,1],
sigma_raw [R,S])`.  The renderer does not know what is behind it (NeRF with its colour head,
or the frozen NeRF's density with the style MLP's colour), which is how the style stage reuses it;
a field that also has `density(pts) -> sigma_raw` can share the fine level's colours
(render_rays' share_color).
"""
import jittor as jt
import numpy as np

from render.compositing import composite
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


def render_rays(rays_o, rays_d, viewdirs, coarse_field, fine_field=None, near=0.0, far=1.0,
                n_samples=64, n_fine=64, perturb=False, noise_std=0.0, white_bkgd=False, lindisp=False,
                deterministic_fine=True, share_color=False, coarse_rgb=True):
    """Render rays_o, rays_d [R,3] (viewdirs [R,3] or None).

    Returns {"coarse": level, "fine": level} ("fine" only when n_fine > 0), each level a dict of
    rgb [R,3], depth [R], acc [R], weights [R,S], z_vals [R,S] (S = n_samples, or
    n_samples + n_fine for the fine level).  near/far: floats or [R].  The fine samples come from
    the detached coarse weights, deterministically by default (as the original StylizedNeRF;
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
    rays_o, rays_d = _as_var(rays_o), _as_var(rays_d)
    viewdirs = None if viewdirs is None else _as_var(viewdirs)
    n_rays = rays_o.shape[0]
    if tuple(rays_o.shape) != (n_rays, 3) or tuple(rays_d.shape) != (n_rays, 3):
        raise ValueError(f"render_rays: rays_o and rays_d must be [R,3], got {rays_o.shape} and {rays_d.shape}")
    z_vals = stratified_samples(near, far, n_samples, perturb=perturb, lindisp=lindisp, n_rays=n_rays)
    if share_color and n_fine > 0:
        return _render_shared_color(coarse_field, fine_field or coarse_field, rays_o, rays_d, viewdirs, z_vals,
                                    n_fine, noise_std, white_bkgd, deterministic_fine)
    if not coarse_rgb and n_fine > 0 and hasattr(coarse_field, "density"):
        out = {"coarse": _density_level(coarse_field, rays_o, rays_d, z_vals, noise_std)[0]}
    else:
        out = {"coarse": _render_level(coarse_field, rays_o, rays_d, viewdirs, z_vals, noise_std, white_bkgd)}
    if n_fine > 0:
        z_all = hierarchical_z(z_vals, out["coarse"]["weights"].detach(), n_fine, deterministic=deterministic_fine)
        field = coarse_field if fine_field is None else fine_field
        out["fine"] = _render_level(field, rays_o, rays_d, viewdirs, z_all, noise_std, white_bkgd)
    return out


def _density_level(field, rays_o, rays_d, z_vals, noise_std):
    """A level without colour (weights, depth, acc, z_vals) and the (noised) sigma_raw it used."""
    sigma = field.density(rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_vals.unsqueeze(-1))
    if noise_std > 0:  # drawn here once, so that a caller can composite the same sigma again
        sigma = sigma + jt.randn(sigma.shape, dtype="float32") * noise_std
    no_rgb = jt.zeros(tuple(sigma.shape) + (3,), dtype="float32")  # the weights depend on sigma only
    out = composite(no_rgb, sigma, z_vals, rays_d)
    del out["rgb"]
    out["z_vals"] = z_vals
    return out, sigma


def _shared_geometry(coarse_field, fine_field, rays_o, rays_d, z_vals, n_fine, noise_std, deterministic_fine):
    """What every colour of a share_color render has in common: the coarse density level, the fine
    depths (holding each coarse depth, at coarse_at) and the fine level's points and sigma_raw
    (each with one noise draw, so that every colour composites the same densities)."""
    density, sigma_c = _density_level(coarse_field, rays_o, rays_d, z_vals, noise_std)
    z_all, coarse_at = hierarchical_z(z_vals, density["weights"].detach(), n_fine,
                                      deterministic=deterministic_fine, with_coarse_index=True)
    pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_all.unsqueeze(-1)
    sigma_f = fine_field.density(pts)
    if noise_std > 0:
        sigma_f = sigma_f + jt.randn(sigma_f.shape, dtype="float32") * noise_std
    return dict(z_vals=z_vals, sigma_c=sigma_c, z_all=z_all, coarse_at=coarse_at, pts=pts, sigma_f=sigma_f)


def _composite_shared(geo, samples_rgb, rays_d, white_bkgd):
    """{"coarse", "fine"} levels of one colour (samples_rgb [R, S+n_fine, 3] at the fine depths) over
    a _shared_geometry; the coarse colours are gathered from the fine samples at the coarse depths."""
    fine = composite(samples_rgb, geo["sigma_f"], geo["z_all"], rays_d, white_bkgd=white_bkgd)
    fine["z_vals"] = geo["z_all"]
    n_rays, n_coarse = geo["coarse_at"].shape
    rgb_c = samples_rgb.reindex([n_rays, n_coarse, 3], ["i0", "@e0(i0,i1)", "i2"], extras=[geo["coarse_at"]])
    coarse = composite(rgb_c, geo["sigma_c"], geo["z_vals"], rays_d, white_bkgd=white_bkgd)
    coarse["z_vals"] = geo["z_vals"]
    return {"coarse": coarse, "fine": fine}


def _render_shared_color(coarse_field, fine_field, rays_o, rays_d, viewdirs, z_vals, n_fine, noise_std,
                         white_bkgd, deterministic_fine):
    """render_rays with share_color: coarse density -> fine depths -> colour once (see there)."""
    # sigma_c with its noise: the coarse image uses the same draw
    density, sigma_c = _density_level(coarse_field, rays_o, rays_d, z_vals, noise_std)
    z_all, coarse_at = hierarchical_z(z_vals, density["weights"].detach(), n_fine,
                                      deterministic=deterministic_fine, with_coarse_index=True)
    pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_all.unsqueeze(-1)
    samples_rgb, sigma_f = fine_field(pts, viewdirs)
    if noise_std > 0:
        sigma_f = sigma_f + jt.randn(sigma_f.shape, dtype="float32") * noise_std
    geo = dict(z_vals=z_vals, sigma_c=sigma_c, z_all=z_all, coarse_at=coarse_at, pts=pts, sigma_f=sigma_f)
    return _composite_shared(geo, samples_rgb, rays_d, white_bkgd)


def render_image_colors(rays_o, rays_d, H, W, chunk, coarse_field, fine_field, n_colors, near=0.0, far=1.0,
                        n_samples=64, n_fine=64, noise_std=0.0, white_bkgd=False, lindisp=False,
                        deterministic_fine=True, keys=("rgb", "depth"), perturb=False):
    """An image in n_colors colourings of one geometry (the style MLP with several latent codes):
    the same result as render_image(..., share_color=True) once per colour, but the densities,
    the fine depths and their sigma are computed once per chunk for all colours.

    fine_field: `.density(pts) -> sigma_raw [R,S]` and `.color(pts, k) -> rgb [R,S,3]` for colour
    k < n_colors; coarse_field: `.density`.  No view directions (the style fields take none).
    Returns a list of n_colors {"coarse": {key: [H,W,...]}, "fine": {...}} of NumPy arrays.
    Memory: each colour's MLP runs (and is fetched) before the next starts.
    """
    if n_fine < 1:
        raise ValueError("render_image_colors: the shared-colour render needs fine samples (n_fine >= 1)")
    n_pix = int(H) * int(W)
    ro = np.asarray(rays_o.numpy() if isinstance(rays_o, jt.Var) else rays_o, np.float32).reshape(-1, 3)
    rd = np.asarray(rays_d.numpy() if isinstance(rays_d, jt.Var) else rays_d, np.float32).reshape(-1, 3)
    if ro.shape != (n_pix, 3) or rd.shape != (n_pix, 3):
        raise ValueError(f"render_image_colors: rays must hold H*W={n_pix} rays of 3 values, got {ro.shape}, {rd.shape}")
    results = [dict() for _ in range(n_colors)]
    with jt.no_grad():
        for start in range(0, n_pix, int(chunk)):
            end = min(start + int(chunk), n_pix)
            o, d = jt.array(ro[start:end]), jt.array(rd[start:end])
            z_vals = stratified_samples(near, far, n_samples, perturb=perturb, lindisp=lindisp, n_rays=end - start)
            geo = _shared_geometry(coarse_field, fine_field, o, d, z_vals, n_fine, noise_std, deterministic_fine)
            jt.sync(list(geo.values()))  # once for every colour
            for k in range(n_colors):
                out = _composite_shared(geo, fine_field.color(geo["pts"], k), d, white_bkgd)
                wanted = [(level, key) for level in out for key in keys if key in out[level]]
                jt.sync([out[level][key] for level, key in wanted])
                for level, key in wanted:
                    value = out[level][key].numpy()
                    if (level, key) not in results[k]:
                        results[k][(level, key)] = np.empty((n_pix,) + value.shape[1:], np.float32)
                    results[k][(level, key)][start:end] = value
    images = []
    for res in results:
        image = {}
        for (level, key), arr in res.items():
            image.setdefault(level, {})[key] = arr.reshape((int(H), int(W)) + arr.shape[1:])
        images.append(image)
    return images


def render_image(rays_o, rays_d, viewdirs, H, W, chunk, keys=("rgb", "depth", "acc"), **kwargs):
    """Render an image's rays in chunks without gradients; returns NumPy arrays.

    rays_o, rays_d, viewdirs: [H,W,3] or [H*W,3] (NumPy or jt; viewdirs may be None).
    kwargs go to render_rays (near/far may be per-ray arrays of H*W values).
    Returns {"coarse": {key: [H,W,...]}, "fine": {...}} for the requested keys
    (rgb [H,W,3], depth [H,W], acc [H,W], weights/z_vals [H,W,S]).
    """
    def flat(x):
        if x is None:
            return None
        x = x.numpy() if isinstance(x, jt.Var) else np.asarray(x)
        return x.reshape(-1, x.shape[-1]).astype(np.float32, copy=False)

    n_pix = int(H) * int(W)
    ro, rd, vd = flat(rays_o), flat(rays_d), flat(viewdirs)
    for name, arr in (("rays_o", ro), ("rays_d", rd), ("viewdirs", vd)):
        if arr is not None and arr.shape != (n_pix, 3):
            raise ValueError(f"render_image: {name} must hold H*W={n_pix} rays of 3 values, got {arr.shape}")
    if int(chunk) < 1:
        raise ValueError(f"render_image: chunk must be >= 1, got {chunk}")
    per_ray = {k: np.asarray(v, np.float32).reshape(-1) for k, v in kwargs.items()
               if k in ("near", "far") and not np.isscalar(v)}
    results = {}
    with jt.no_grad():
        for start in range(0, n_pix, int(chunk)):
            end = min(start + int(chunk), n_pix)
            kw = dict(kwargs, **{k: v[start:end] for k, v in per_ray.items()})
            out = render_rays(jt.array(ro[start:end]), jt.array(rd[start:end]),
                              None if vd is None else jt.array(vd[start:end]), **kw)
            wanted = [(level, key) for level in out for key in keys if key in out[level]]
            jt.sync([out[level][key] for level, key in wanted])  # one run for all outputs of the chunk
            for level, key in wanted:
                value = out[level][key].numpy()
                if (level, key) not in results:  # allocate once the shape is known
                    results[(level, key)] = np.empty((n_pix,) + value.shape[1:], np.float32)
                results[(level, key)][start:end] = value
    images = {}
    for (level, key), arr in results.items():
        images.setdefault(level, {})[key] = arr.reshape((int(H), int(W)) + arr.shape[1:])
    return images


def expected_points(rays_o, rays_d, depth):
    """3D points at the expected depth: rays_o, rays_d [..., 3], depth [...] -> [..., 3] (NumPy or jt)."""
    if isinstance(depth, jt.Var):
        return _as_var(rays_o) + _as_var(rays_d) * depth.unsqueeze(-1)
    return np.asarray(rays_o) + np.asarray(rays_d) * np.asarray(depth)[..., None]
