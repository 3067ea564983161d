"""Pinhole camera rays, NDC rays, and random ray batches over all pixels of a set of views.

Conventions of nerf-pytorch (camera looks down -z, x right, y up):
pixel (column i, row j) has the camera-space direction [(i - W/2)/f, -(j - H/2)/f, -1]
(integer pixel coordinates against the image centre W/2, H/2, exactly as nerf-pytorch).
NDC (forward-facing scenes): rays are first moved to the plane z = -near, then projected;
in NDC the origins lie on z = -1 and t in [0, 1] covers depths near .. infinity.
All arrays are float32.
"""
import numpy as np


def scaled_hwf(hwf, f):
    """(H, W, focal) of the images rendered f times smaller (integer f; H and W rounded down)."""
    H, W, focal = hwf
    return int(H) // f, int(W) // f, focal / f


def camera_dirs(H, W, focal):
    """Camera-space ray directions [H,W,3] float32 (not normalised; z = -1)."""
    i, j = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32), indexing="xy")
    f = np.float32(focal)
    return np.stack([(i - np.float32(W * 0.5)) / f, -(j - np.float32(H * 0.5)) / f,
                     -np.ones_like(i)], -1)


def get_rays_np(H, W, focal, c2w):
    """Rays of every pixel of one view. c2w [3,4] -> (rays_o [H,W,3], rays_d [H,W,3]) float32."""
    c2w = np.asarray(c2w, np.float32)
    rays_d = camera_dirs(H, W, focal) @ c2w[:3, :3].T  # rotate into the world frame
    rays_o = np.broadcast_to(c2w[:3, 3], rays_d.shape).copy()
    return rays_o, rays_d


def ndc_rays(H, W, focal, near, rays_o, rays_d):
    """NeRF's NDC rays; works on numpy arrays and Jittor Vars alike ([...,3] each).

    Origins are moved along the ray to the plane z = -near, then
      o' = [-f/(W/2) ox/oz, -f/(H/2) oy/oz, 1 + 2 near/oz]
      d' = [-f/(W/2) (dx/dz - ox/oz), -f/(H/2) (dy/dz - oy/oz), -2 near/oz]
    so that o' + t' d' (t' in [0,1)) is the projection of o + t d (t >= 0).
    """
    if isinstance(rays_o, np.ndarray):
        stack = np.stack
    else:
        import jittor as jt
        stack = jt.stack
    t = -(near + rays_o[..., 2]) / rays_d[..., 2]
    rays_o = rays_o + t[..., None] * rays_d
    ox, oy, oz = rays_o[..., 0], rays_o[..., 1], rays_o[..., 2]
    dx, dy, dz = rays_d[..., 0], rays_d[..., 1], rays_d[..., 2]
    ax = -2.0 * focal / W
    ay = -2.0 * focal / H
    o_ndc = stack([ax * ox / oz, ay * oy / oz, 1.0 + 2.0 * near / oz], -1)
    d_ndc = stack([ax * (dx / dz - ox / oz), ay * (dy / dz - oy / oz), -2.0 * near / oz], -1)
    return o_ndc, d_ndc


def ndc_rays_np(H, W, focal, near, rays_o, rays_d):
    """ndc_rays for numpy input, float32 out."""
    o, d = ndc_rays(H, W, float(focal), float(near), np.asarray(rays_o, np.float32),
                    np.asarray(rays_d, np.float32))
    return o.astype(np.float32, copy=False), d.astype(np.float32, copy=False)


def unit(v):
    """Rows of v [...,3] scaled to length 1 (float32)."""
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32, copy=False)


def image_rays(H, W, focal, c2w, ndc=True, near=1.0):
    """Rays of one view for rendering: (rays_o, rays_d, viewdirs), each [H*W,3] float32.

    viewdirs are the unit directions of the original (world-space, non-NDC) rays.
    """
    rays_o, rays_d = get_rays_np(H, W, focal, c2w)
    rays_o, rays_d = rays_o.reshape(-1, 3), rays_d.reshape(-1, 3)
    viewdirs = unit(rays_d)
    if ndc:
        rays_o, rays_d = ndc_rays_np(H, W, focal, near, rays_o, rays_d)
    return rays_o, rays_d, viewdirs


def pixel_rays(H, W, focal, c2ws, rows, cols, ndc=True, near=1.0):
    """Rays through pixels (rows[i], cols[i]) of cameras c2ws[i] ([B,3,4]); float32 [B,3] each.

    Same pixel convention as dataset.rays.camera_dirs, for a few pixels of many views.
    """
    dirs = np.stack([(cols - W * 0.5) / focal, -(rows - H * 0.5) / focal, -np.ones(len(cols))], -1)
    rays_d = np.einsum("bij,bj->bi", c2ws[:, :3, :3], dirs).astype(np.float32)
    rays_o = np.ascontiguousarray(c2ws[:, :3, 3], np.float32)
    if ndc:
        rays_o, rays_d = ndc_rays_np(H, W, focal, near, rays_o, rays_d)
    return rays_o, rays_d


class PixelRays:
    """Precomputed rays and target colours of every pixel of a set of views.

    Arrays (float32, [V*H*W, 3], view-major then row-major pixels):
      rays_o, rays_d  ray origins / directions (NDC if built with ndc=True)
      viewdirs        unit directions of the original rays (the NeRF colour head's input)
      rgb             target colours
    The flat index of pixel (row y, column x) of the v-th view is v*H*W + y*W + x.
    `sample` draws uniform random pixels with replacement each step: no permutation array.
    """

    def __init__(self, rays_o, rays_d, viewdirs, rgb, H, W, view_ids):
        n = len(view_ids) * H * W
        for name, a in (("rays_o", rays_o), ("rays_d", rays_d), ("viewdirs", viewdirs), ("rgb", rgb)):
            if a.shape != (n, 3) or a.dtype != np.float32:
                raise ValueError(f"PixelRays: {name} must be float32 [{n},3], got {a.dtype} {a.shape}")
        self.rays_o, self.rays_d, self.viewdirs, self.rgb = rays_o, rays_d, viewdirs, rgb
        self.H, self.W = int(H), int(W)
        self.view_ids = np.asarray(view_ids, np.int64)

    @classmethod
    def from_views(cls, images, poses, focal, view_ids, ndc=True, near=1.0):
        """images [N,H,W,3], poses [N,3,4]; keeps the views listed in view_ids (filled view by view)."""
        view_ids = np.asarray(view_ids, np.int64).reshape(-1)
        if len(view_ids) == 0:
            raise ValueError("PixelRays: no views given")
        _, H, W, _ = images.shape
        hw = H * W
        n = len(view_ids) * hw
        rays_o, rays_d, viewdirs, rgb = (np.empty((n, 3), np.float32) for _ in range(4))
        for k, v in enumerate(view_ids):
            rows = slice(k * hw, (k + 1) * hw)
            rays_o[rows], rays_d[rows], viewdirs[rows] = image_rays(H, W, focal, poses[v], ndc, near)
            rgb[rows] = images[v].reshape(hw, 3)
        return cls(rays_o, rays_d, viewdirs, rgb, H, W, view_ids)

    @classmethod
    def from_scene(cls, scene, view_ids, ndc=True, near=1.0):
        """From an LLFFScene (near=1 is NeRF's NDC near plane for LLFF)."""
        return cls.from_views(scene.images, scene.poses, scene.focal, view_ids, ndc, near)

    def __len__(self):
        return len(self.rgb)

    def gather(self, index):
        """Rays and colours at flat indices [B] -> dict of arrays (index included)."""
        index = np.asarray(index, np.int64)
        return {"rays_o": self.rays_o[index], "rays_d": self.rays_d[index],
                "viewdirs": self.viewdirs[index], "rgb": self.rgb[index], "index": index}

    def sample(self, batch_size, rng):
        """batch_size uniform random pixels (with replacement) -> dict of [B,3] arrays + "index" [B].

        rng: numpy Generator (or legacy RandomState).
        """
        n = len(self)
        if hasattr(rng, "integers"):
            index = rng.integers(0, n, size=int(batch_size), dtype=np.int64)
        else:
            index = rng.randint(0, n, size=int(batch_size)).astype(np.int64)
        return self.gather(index)

    def locate(self, index):
        """Flat indices -> (view ids in the scene, rows, columns), each int64 [B]."""
        index = np.asarray(index, np.int64)
        k, pix = np.divmod(index, self.H * self.W)
        y, x = np.divmod(pix, self.W)
        return self.view_ids[k], y, x
