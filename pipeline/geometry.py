"""Stage 2: geometry data from the trained NeRF.

For each generated view (poses interpolated between the training poses with
--gen_factor; 1 = the training poses themselves) the NeRF's fine RGB, expected
depth and expected 3D point map (world coordinates) are rendered and cached in
`<expdir>/geometry/`.  The cache is reused while the NeRF checkpoint step, the
pose set and the image size stay the same (its key: geometry/meta.json, core/cache_key.py),
and regenerated otherwise.

With --render_mode fast (the default) the views are rendered by the fast renderer
(render/fast.py: the same samples, the MLPs skipped in empty cells and behind the point where a
ray turned opaque; its occupancy grid is cached in the experiment folder, where the videos and
evaluate.py use it again): these are renders without gradients, like the videos.  Its depths
and points match the exact renderer's but at a few depth-edge pixels, where early termination
drops a ray's last faint samples (fern.txt's NeRF: 0.07% of the points moved by more than 1% of
their distance; bench/bench_geometry.py), so a cache written by either is kept.
"""
import os
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from core.cache_key import matches, refresh
from core.npz_cache import read_arrays, write_arrays
from dataset.camera_paths import interpolate_poses
from dataset.rays import image_rays
from pipeline.experiment import remove_partial_files
from render.fast import fast_options
from render.options import RenderOptions
from render.renderer import render_image


@dataclass
class GeometryData:
    rgb: np.ndarray      # [V,H,W,3] float32 in [0,1]: NeRF renders
    depth: np.ndarray    # [V,H,W] float32: expected ray parameter (NDC t when NDC is used)
    points: np.ndarray   # [V,H,W,3] float32: expected surface point, world coordinates
    c2ws: np.ndarray     # [V,3,4] float32
    hwf: tuple           # (H, W, focal)

    @property
    def n_views(self):
        return len(self.c2ws)


def ndc_to_world(pts, H, W, focal, near=1.0):
    """Invert NeRF's LLFF NDC map (x' = -f/(W/2) x/z, y' = -f/(H/2) y/z, z' = 1 + 2 near / z)."""
    pts = np.asarray(pts, np.float32)
    z_ndc = np.minimum(pts[..., 2], 1.0 - 1e-6)  # z' -> 1 is infinitely far
    z = 2.0 * near / (z_ndc - 1.0)
    x = -pts[..., 0] * z * (W / 2.0) / focal
    y = -pts[..., 1] * z * (H / 2.0) / focal
    return np.stack([x, y, z], -1).astype(np.float32)


def surface_points(rays_o, rays_d, depth, H, W, focal, ndc):
    """World points o + t d at the expected ray parameter t (NDC rays mapped back): shaped as
    depth + (3,), [H,W,3] for a whole image (H, W, focal: the image the rays were made for)."""
    shape = np.shape(depth)
    p = (np.asarray(rays_o).reshape(shape + (3,))
         + np.asarray(depth)[..., None] * np.asarray(rays_d).reshape(shape + (3,)))
    return ndc_to_world(p, H, W, focal) if ndc else p.astype(np.float32)


def render_view(args, hwf, c2w, opts, fields, stride=1):
    """One geometry view as stage 2 renders it, every stride-th pixel in both directions: the
    fine level's colour [h,w,3] and expected depth [h,w] and the surface points [h,w,3] (world
    coordinates).  fields: (coarse, fine); the coarse level runs without its colour head."""
    H, W, focal = int(hwf[0]), int(hwf[1]), hwf[2]
    ro, rd, vd = (r.reshape(H, W, 3)[::stride, ::stride] for r in image_rays(H, W, focal, c2w, ndc=not args.no_ndc))
    h, w = ro.shape[:2]
    out = render_image(ro, rd, vd if args.use_viewdir else None, h, w, args.chunk, opts=opts,
                       coarse_field=fields[0], fine_field=fields[1], coarse_rgb=False)
    res = out["fine" if "fine" in out else "coarse"]
    return res["rgb"], res["depth"], surface_points(ro, rd, res["depth"], H, W, focal, ndc=not args.no_ndc)


def geometry_poses(args, scene):
    return interpolate_poses(scene.poses, args.gen_factor, closed=False).astype(np.float32)


def _meta(args, scene, nerf_step, poses):
    H, W, focal = scene.hwf
    return {"nerf_step": int(nerf_step), "n_views": int(len(poses)), "H": int(H), "W": int(W),
            "focal": float(focal), "gen_factor": float(args.gen_factor), "ndc": not args.no_ndc,
            "poses_sum": round(float(np.abs(poses).sum()), 4)}


def _read_view(path, H, W, log):
    """(rgb, depth, points) of a cached view, or None when it is missing or damaged (then it
    is rendered again)."""
    got = read_arrays(path, {"rgb": (H, W, 3), "depth": (H, W), "points": (H, W, 3)}, "geometry view", log)
    return None if got is None else (got["rgb"].astype(np.float32), got["depth"], got["points"])


def _write_view(folder, v, rgb, depth, points):
    write_arrays(os.path.join(folder, f"view_{v:03d}.npz"),
                 {"rgb": rgb.astype(np.float16), "depth": depth.astype(np.float32), "points": points.astype(np.float32)})


def is_current(args, scene, expdir, nerf_step):
    """True when the cache holds every view of this NeRF step and pose set (nothing to render)."""
    folder = os.path.join(expdir, "geometry")
    poses = geometry_poses(args, scene)
    if not matches(os.path.join(folder, "meta.json"), _meta(args, scene, nerf_step, poses)):
        return False
    return all(os.path.exists(os.path.join(folder, f"view_{v:03d}.npz")) for v in range(len(poses)))


def load_or_generate(args, scene, expdir, system, nerf_step, log=print):
    """Cached geometry data for the current NeRF, rendering what is missing or damaged."""
    folder = os.path.join(expdir, "geometry")
    os.makedirs(folder, exist_ok=True)
    poses = geometry_poses(args, scene)
    meta = _meta(args, scene, nerf_step, poses)
    remove_partial_files(folder)  # partial writes of a killed run

    def clear():  # views of another NeRF or pose set
        for f in os.listdir(folder):
            if f.startswith("view_"):
                os.remove(os.path.join(folder, f))
    refresh(os.path.join(folder, "meta.json"), meta, clear, "geometry cache", log)
    H, W, focal = int(meta["H"]), int(meta["W"]), meta["focal"]
    rgb = np.zeros((len(poses), H, W, 3), np.float32)
    depth = np.zeros((len(poses), H, W), np.float32)
    points = np.zeros((len(poses), H, W, 3), np.float32)
    todo = []
    for v in range(len(poses)):
        got = _read_view(os.path.join(folder, f"view_{v:03d}.npz"), H, W, log)
        if got is None:
            todo.append(v)
        else:
            rgb[v], depth[v], points[v] = got
    if todo:
        log(f"geometry: rendering {len(todo)} of {len(poses)} views into {folder}")
    coarse_field, fine_field = system.fields()
    opts = RenderOptions.from_args(args, scene, "eval")
    if todo:  # (the occupancy grid is built, or read, only when a view is to be rendered)
        opts = fast_options(opts, args, scene, (coarse_field, fine_field), expdir, nerf_step, log)
    for v in tqdm(todo, desc="geometry", dynamic_ncols=True, disable=not todo):
        rgb_v, depth_v, p = render_view(args, (H, W, focal), poses[v], opts, (coarse_field, fine_field))
        _write_view(folder, v, rgb_v, depth_v, p)
        # what later stages read: the float16-rounded colours, as a cached view gives them
        rgb[v] = rgb_v.astype(np.float16).astype(np.float32)
        depth[v], points[v] = depth_v, p
    return GeometryData(rgb=rgb, depth=depth, points=points, c2ws=poses, hwf=(H, W, focal))
