"""Exact synthetic scenes for the splatting and consistency tests: textured planes z = const;
and a 360-degree capture in LLFF's file format for --spherify (write_ring_capture).

Independent of the project's camera code: rays are built here from the convention itself
(pixel (i, j) -> camera direction [(i - W/2)/f, -(j - H/2)/f, -1], camera looks down -z) and
intersected analytically with axis-aligned rectangles on planes z = z0, so every pixel's colour
(a smooth function of the world x, y) and world point are known exactly.
"""
import os
from dataclasses import dataclass

import imageio.v2 as imageio
import numpy as np


def texture(x, y, phase=0.0):
    """Smooth colour [..., 3] in [0.15, 0.85] of the world position (x, y)."""
    return np.stack([0.5 + 0.35 * np.sin(1.3 * x + 0.4 * y + phase),
                     0.5 + 0.35 * np.cos(0.7 * x - 1.1 * y + phase),
                     0.5 + 0.35 * np.sin(0.9 * x + 0.9 * y + 1.0 + phase)], -1)


@dataclass
class Plane:
    z: float                           # the plane z = z (world), seen from z > this
    x_range: tuple = (-np.inf, np.inf)
    y_range: tuple = (-np.inf, np.inf)
    phase: float = 0.0                 # texture variant, so two planes look different
    freq: float = 1.0                  # texture frequency multiplier

    def colour(self, x, y):
        return texture(self.freq * x, self.freq * y, self.phase)


def pose(tx=0.0, ty=0.0, tz=0.0, yaw_deg=0.0):
    """c2w [3,4] float64: rotation by yaw about the world y axis, then the centre (tx, ty, tz)."""
    a = np.deg2rad(yaw_deg)
    R = np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])
    return np.concatenate([R, np.array([[tx], [ty], [tz]])], 1)


def camera_dirs(H, W, focal):
    """[H,W,3] float64 camera-space directions with z = -1."""
    j, i = np.mgrid[0:H, 0:W].astype(np.float64)
    return np.stack([(i - W / 2) / focal, -(j - H / 2) / focal, -np.ones_like(i)], -1)


def render(planes, c2w, H, W, focal):
    """Ray-cast the planes. Returns (rgb [H,W,3], points [H,W,3] world, hit [H,W] bool), float64;
    the nearest plane hit in front of the camera wins; pixels hitting nothing are 0 / not hit."""
    c2w = np.asarray(c2w, np.float64)
    d = camera_dirs(H, W, focal) @ c2w[:, :3].T
    o = c2w[:, 3]
    best_t = np.full((H, W), np.inf)
    rgb = np.zeros((H, W, 3))
    points = np.zeros((H, W, 3))
    for plane in planes:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (plane.z - o[2]) / d[..., 2]
        p = o + t[..., None] * d
        inside = ((t > 0) & (p[..., 0] >= plane.x_range[0]) & (p[..., 0] <= plane.x_range[1])
                  & (p[..., 1] >= plane.y_range[0]) & (p[..., 1] <= plane.y_range[1]))
        nearer = inside & (t < best_t)
        best_t[nearer] = t[nearer]
        points[nearer] = p[nearer]
        rgb[nearer] = plane.colour(p[nearer][:, 0], p[nearer][:, 1])
    return rgb, points, np.isfinite(best_t)


def render_sequence(planes, c2ws, H, W, focal):
    """render() for each pose -> (rgb [T,H,W,3], points [T,H,W,3]) float32, c2ws [T,3,4] float32."""
    out = [render(planes, c, H, W, focal) for c in c2ws]
    rgb = np.stack([o[0] for o in out]).astype(np.float32)
    pts = np.stack([o[1] for o in out]).astype(np.float32)
    return rgb, pts, np.stack([np.asarray(c, np.float32) for c in c2ws])


def write_ring_capture(root, n=12, radius=3.0, target=(1.0, -2.0, 0.3), seed=0):
    """A 360-degree capture in LLFF's file format: n cameras on a tilted ring around `target`,
    each looking at it (within a small jitter); tiny images; bounds around the target."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"))
    target = np.asarray(target)
    rows = []
    for k in range(n):
        th = 2 * np.pi * k / n
        centre = target + radius * np.array([np.cos(th), np.sin(th), 0.3]) + rng.normal(0, 0.05, 3)
        back = centre - target + rng.normal(0, 0.02, 3)  # OpenGL: the camera looks down -back
        back /= np.linalg.norm(back)
        right = np.cross([0.0, 0.0, 1.0], back)
        right /= np.linalg.norm(right)
        up = np.cross(back, right)
        pose = np.stack([-up, right, back, centre, [20, 30, 25.0]], 1)  # LLFF: [down, right, back]
        d = np.linalg.norm(centre - target)
        rows.append(np.concatenate([pose.ravel(), [d - 1.0, d + 1.0]]))
        imageio.imwrite(os.path.join(root, "images", f"v{k:02d}.png"), np.zeros((20, 30, 3), np.uint8))
    np.save(os.path.join(root, "poses_bounds.npy"), np.array(rows))
    return target, np.array(rows)
