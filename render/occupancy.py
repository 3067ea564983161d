"""An occupancy grid of a trained NeRF: which cells of its sampling volume can hold density.

The fast renderer (render/fast.py) evaluates the MLPs only at samples in occupied cells (as
nerfacc's OccGridEstimator and Instant-NGP do).  The grid covers an axis-aligned box holding
every ray segment [near, far] of the scene's cameras (scene_box: the NDC volume the rays pass
through for LLFF scenes, the near/far frustums with --no_ndc); a point outside the box counts as
occupied, so a camera far from the captured ones is still rendered exactly.

Construction (build_grid), once per trained NeRF, from both of its MLPs: a cell is empty only
when neither the coarse nor the fine MLP has density there (the fine MLP's thin surfaces,
which its own probes can miss, sit where the coarse MLP has density: the fine samples are
placed there):
- each of res^3 cells is probed at its centre and at samples_per_cell - 1 jittered points;
- a cell is occupied when a probe's raw density exceeds sigma_threshold: the density whose
  opacity over the largest step a render takes (the box diagonal over n_samples - 1, the coarse
  spacing of a segment inside the box; fine steps are shorter) is `alpha` (1e-4): a skipped
  sample would have added less than that opacity;
- the occupied set is dilated by `dilate` cells, so that thin structure between probes is kept.
The probes sample the density, so the grid is only as conservative as they are dense: on fern
the default (128^3 cells, 4 probes) keeps the images within 69 dB of the exact ones, a 16^3 grid
with one probe a cell lost a leaf (37 dB on a held-out view).

Grids are cached next to the checkpoint as occupancy_<step>.npz, keyed by the step, the
settings, the box and n_samples; another key rebuilds it (load_or_build; a run's grid:
render.fast.fast_options).
"""
import dataclasses
import json
import math
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class GridSettings:
    resolution: int = 128       # cells per axis
    samples_per_cell: int = 4   # probes per cell: the centre + jittered ones
    alpha: float = 1e-4         # largest opacity a skipped sample may have had (sets the threshold)
    dilate: int = 1             # cells added around every occupied cell
    seed: int = 0               # the jitter
    batch: int = 16384          # cells per density batch while building

    def check(self):
        if self.resolution < 1 or self.samples_per_cell < 1 or self.dilate < 0 or self.batch < 1:
            raise ValueError(f"GridSettings: resolution, samples_per_cell and batch must be >= 1 and "
                             f"dilate >= 0, got {self}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"GridSettings: alpha must be in (0, 1), got {self.alpha}")


@dataclasses.dataclass
class OccupancyGrid:
    lo: np.ndarray        # [3] float32: the box's lower corner
    hi: np.ndarray        # [3] float32: its upper corner
    occupied: np.ndarray  # bool [res, res, res] (x, y, z)
    key: str = ""         # what it was built from (the cache key)

    @property
    def resolution(self):
        return self.occupied.shape

    @property
    def fraction(self):
        return float(self.occupied.mean())

    def lookup(self, pts):
        """NumPy reference: bool [...] for points [..., 3] (outside the box: True)."""
        res = np.array(self.occupied.shape)
        cell = np.floor((np.asarray(pts, np.float64) - self.lo) / (self.hi - self.lo) * res).astype(np.int64)
        inside = np.all((cell >= 0) & (cell < res), axis=-1)
        c = np.clip(cell, 0, res - 1)
        return ~inside | self.occupied[c[..., 0], c[..., 1], c[..., 2]]


def sigma_threshold(alpha, lo, hi, n_samples):
    """Raw density whose opacity over the largest render step (box diagonal / (n_samples - 1)) is alpha."""
    step = float(np.linalg.norm(np.asarray(hi, np.float64) - lo)) / max(int(n_samples) - 1, 1)
    return -math.log1p(-alpha) / step


def dilate(occ, cells):
    """Binary dilation of occ [X,Y,Z] by a (2 cells + 1)^3 cube."""
    for axis in range(3):  # a cube is separable: dilate along each axis in turn
        out = occ.copy()
        for shift in range(1, cells + 1):
            lead = [slice(None)] * 3
            tail = [slice(None)] * 3
            lead[axis], tail[axis] = slice(shift, None), slice(None, -shift)
            out[tuple(lead)] |= occ[tuple(tail)]
            out[tuple(tail)] |= occ[tuple(lead)]
        occ = out
    return occ


def max_density(density, lo, hi, settings):
    """The largest raw density among each cell's probes: float32 [res, res, res].

    density: callable(pts jt [B, K, 3]) -> sigma_raw [B, K] (a field's .density)."""
    import jittor as jt
    n = settings.resolution
    k = settings.samples_per_cell
    lo, size = np.asarray(lo, np.float64), np.asarray(hi, np.float64) - lo
    out = np.empty(n ** 3, np.float32)
    with jt.no_grad():
        for b, start in enumerate(range(0, n ** 3, settings.batch)):
            cells = np.arange(start, min(start + settings.batch, n ** 3))
            ijk = np.stack(np.unravel_index(cells, (n, n, n)), -1).astype(np.float64)  # [B, 3]
            offsets = np.random.default_rng([settings.seed, b]).random((len(cells), k, 3))
            offsets[:, 0] = 0.5  # the first probe at the centre
            pts = lo + (ijk[:, None, :] + offsets) / n * size
            sigma = density(jt.array(pts.astype(np.float32)))
            out[start:start + len(cells)] = sigma.max(dim=1).numpy()
    return out.reshape(n, n, n)


def build_grid(densities, lo, hi, n_samples, settings=GridSettings(), key=""):
    """densities: callables pts [B,K,3] -> sigma_raw [B,K] (a NeRF's MLPs) -> OccupancyGrid of
    the cells where any of them has density."""
    settings.check()
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    if lo.shape != (3,) or hi.shape != (3,) or not np.all(hi > lo):
        raise ValueError(f"build_grid: need a box with hi > lo in every axis, got {lo} .. {hi}")
    threshold = sigma_threshold(settings.alpha, lo, hi, n_samples)
    if not densities:
        raise ValueError("build_grid: no density to probe")
    sigma = np.max([max_density(fn, lo, hi, settings) for fn in densities], axis=0)
    return OccupancyGrid(lo, hi, dilate(sigma > threshold, settings.dilate), key)


def scene_box(hwf, poses, near, far, ndc, margin=0.02, n_edge=5):
    """The box [lo, hi] holding the ray segments [near, far] of every camera in poses [N,3,4]
    (pixels on an n_edge x n_edge lattice reaching the image corners: a camera's rays fill the
    convex hull of its corner rays, in NDC as well), widened by margin of its size per side."""
    from dataset.rays import ndc_rays_np
    H, W, focal = int(hwf[0]), int(hwf[1]), float(hwf[2])
    i, j = np.meshgrid(np.linspace(0, W - 1, n_edge), np.linspace(0, H - 1, n_edge))
    dirs = np.stack([(i - W * 0.5) / focal, -(j - H * 0.5) / focal, -np.ones_like(i)], -1).reshape(-1, 3)
    ends = []
    for c2w in np.asarray(poses, np.float64):
        d = dirs @ c2w[:3, :3].T
        o = np.broadcast_to(c2w[:3, 3], d.shape)
        if ndc:
            o, d = ndc_rays_np(H, W, focal, 1.0, o, d)
        ends += [o + near * d, o + far * d]
    ends = np.concatenate(ends).astype(np.float64)
    lo, hi = ends.min(0), ends.max(0)
    pad = margin * np.maximum(hi - lo, 1e-6)
    return (lo - pad).astype(np.float32), (hi + pad).astype(np.float32)


def cache_path(folder, step):
    return os.path.join(folder, f"occupancy_{int(step):06d}.npz")


def grid_key(step, lo, hi, n_samples, settings):
    """What a cached grid must have been built from to be reused."""
    return json.dumps({"step": int(step), "settings": dataclasses.asdict(settings), "n_samples": int(n_samples),
                       "lo": [round(float(v), 5) for v in lo], "hi": [round(float(v), 5) for v in hi]},
                      sort_keys=True)


def save_grid(grid, path):
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, lo=grid.lo, hi=grid.hi, key=np.array(grid.key), shape=np.array(grid.resolution),
                        occupied=np.packbits(grid.occupied.reshape(-1)))
    os.replace(tmp, path)


def load_grid(path):
    """The grid in path, or None when the file is missing or unreadable."""
    try:
        with np.load(path) as f:
            shape = tuple(int(v) for v in f["shape"])
            n = int(np.prod(shape))
            occupied = np.unpackbits(f["occupied"])[:n].astype(bool).reshape(shape)
            return OccupancyGrid(f["lo"], f["hi"], occupied, str(f["key"]))
    except (OSError, KeyError, ValueError):
        return None


def load_or_build(folder, step, densities, lo, hi, n_samples, settings=GridSettings(), log=print):
    """The cached grid of this checkpoint step when its key matches, else a new one (saved);
    densities as build_grid."""
    key = grid_key(step, lo, hi, n_samples, settings)
    path = cache_path(folder, step)
    grid = load_grid(path) if os.path.exists(path) else None
    if grid is not None and grid.key == key:
        return grid
    grid = build_grid(densities, lo, hi, n_samples, settings, key=key)
    save_grid(grid, path)
    log(f"occupancy grid {grid.resolution[0]}^3 of NeRF step {step}: {100 * grid.fraction:.1f}% occupied ({path})")
    return grid
