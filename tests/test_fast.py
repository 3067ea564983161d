"""render/fast.py: the fast renderer gives the exact renderer's images (tiny synthetic scene, a
real tiny NeRF, the stylized multi-colour path) while skipping most MLP evaluations."""
import dataclasses
import os

import jittor as jt
import numpy as np
import pytest

from models.embedder import PositionalEncoding
from models.nerf import NeRF
from models.style_mlp import StyleMLP
from pipeline.style_stage import StyleColors, StyleField
from render.fast import Skipping
from render.occupancy import GridSettings, build_grid, scene_box
from render.options import RenderOptions
from render.renderer import NeRFField, render_image, render_image_colors
from tests.synthetic_scene import Plane, pose, render

PLANES = (Plane(z=0.0, x_range=(-0.6, 0.6), y_range=(-0.6, 0.6), phase=1.0), Plane(z=-1.0))


def psnr(a, b):
    return -10 * np.log10(max(float(np.mean((np.asarray(a) - np.asarray(b)) ** 2)), 1e-20))


class SlabScene:
    """synthetic_scene's planes as densities: slabs 0.06 thick (sigma 400) in each plane's texture."""

    def _inside(self, pts, p):
        x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
        return ((z - p.z).abs() < 0.03) & (x >= p.x_range[0]) & (x <= p.x_range[1]) \
            & (y >= p.y_range[0]) & (y <= p.y_range[1])

    def density(self, pts):
        sigma = jt.full(tuple(pts.shape[:-1]), -1.0)
        for p in PLANES:
            sigma = jt.ternary(self._inside(pts, p), jt.full(sigma.shape, 400.0), sigma)
        return sigma

    def __call__(self, pts, viewdirs=None):
        x, y = pts[..., 0], pts[..., 1]
        rgb = jt.zeros(tuple(pts.shape))
        for p in PLANES:  # synthetic_scene.texture with the plane's phase
            tex = jt.stack([0.5 + 0.35 * jt.sin(1.3 * x + 0.4 * y + p.phase),
                            0.5 + 0.35 * jt.cos(0.7 * x - 1.1 * y + p.phase),
                            0.5 + 0.35 * jt.sin(0.9 * x + 0.9 * y + 1.0 + p.phase)], -1)
            rgb = jt.ternary(self._inside(pts, p).unsqueeze(-1).broadcast(rgb.shape), tex, rgb)
        return rgb, self.density(pts)


def camera_rays(c2w, H=12, W=16, focal=14.0):
    j, i = np.mgrid[0:H, 0:W].astype(np.float64)
    d = np.stack([(i - W / 2) / focal, -(j - H / 2) / focal, -np.ones_like(i)], -1) @ c2w[:, :3].T
    return np.broadcast_to(c2w[:, 3], d.shape).astype(np.float32), d.astype(np.float32)


def test_synthetic_scene_fast_equals_exact_and_skips():
    scene = SlabScene()
    poses = [pose(tz=2.0), pose(0.3, -0.2, 2.2, yaw_deg=8.0)]
    lo, hi = scene_box((12, 16, 14.0), np.stack(poses), 0.5, 4.0, ndc=False)
    grid = build_grid([scene.density], lo, hi, 48,
                      GridSettings(resolution=32, samples_per_cell=4))
    assert 0.0 < grid.fraction < 0.2
    opts = RenderOptions(near=0.5, far=4.0, n_samples=48, n_fine=48, white_bkgd=True)
    skip = Skipping(grid)
    for c2w in poses:
        ro, rd = camera_rays(c2w)
        exact = render_image(ro, rd, None, 12, 16, 50, opts=opts, coarse_field=scene, fine_field=scene)
        fast = render_image(ro, rd, None, 12, 16, 50, opts=dataclasses.replace(opts, skip=skip),
                            coarse_field=scene, fine_field=scene)
        assert exact["fine"]["acc"].min() > 0.99  # every ray hits a plane
        for level in ("coarse", "fine"):
            assert psnr(fast[level]["rgb"], exact[level]["rgb"]) > 60
            np.testing.assert_allclose(fast[level]["depth"], exact[level]["depth"], atol=2e-3)
    # and both are the scene: the ray-cast planes' colours from the frontal camera (the slabs'
    # fronts lie 0.03 above the planes; seen from the side, rays can hit a slab's side)
    np.testing.assert_allclose(render_image(*camera_rays(poses[0]), None, 12, 16, 50, opts=opts, coarse_field=scene,
                                            fine_field=scene)["fine"]["rgb"],
                               render(PLANES, poses[0], 12, 16, 14.0)[0], atol=0.01)
    assert skip.skipped_fraction("coarse") > 0.6 and skip.skipped_fraction("fine") > 0.6, skip.stats


def biased_nerf_fields(seed, use_viewdirs=True):
    """Two tiny NeRFs whose density is positive in part of the volume only."""
    jt.set_global_seed(seed)
    ex, ed = PositionalEncoding(3), PositionalEncoding(2)
    nets = [NeRF(D=3, W=32, input_ch=ex.out_dim, input_ch_views=ed.out_dim, skips=(1,), use_viewdirs=use_viewdirs)
            for _ in range(2)]
    for net in nets:  # large density, zero over much of the volume
        net.alpha_linear.weight.assign(net.alpha_linear.weight * 60)
        net.alpha_linear.bias.assign(jt.full(net.alpha_linear.bias.shape, -4.0))
    return nets, ex, [NeRFField(n, ex, ed if use_viewdirs else None) for n in nets]


def nerf_grid(fields, lo, hi, n_samples, resolution=24):
    return build_grid([f.density for f in fields], lo, hi, n_samples,
                      GridSettings(resolution=resolution, samples_per_cell=6))


def test_tiny_nerf_fast_equals_exact():
    """A real (tiny, random) NeRF with view directions, in NDC-like unit-cube rays."""
    _, _, fields = biased_nerf_fields(14)
    rng = np.random.default_rng(4)
    H, W = 10, 12
    ro = np.concatenate([rng.uniform(-0.8, 0.8, (H * W, 2)), -np.ones((H * W, 1))], -1).astype(np.float32)
    rd = np.concatenate([rng.uniform(-0.2, 0.2, (H * W, 2)), np.full((H * W, 1), 2.0)], -1).astype(np.float32)
    vd = rd / np.linalg.norm(rd, axis=-1, keepdims=True)
    lo, hi = np.full(3, -1.25, np.float32), np.full(3, 1.25, np.float32)
    opts = RenderOptions(near=0.0, far=1.0, n_samples=32, n_fine=32)
    skip = Skipping(nerf_grid(fields, lo, hi, 32), per_round=8)
    exact = render_image(ro, rd, vd, H, W, 37, opts=opts, coarse_field=fields[0], fine_field=fields[1])
    fast = render_image(ro, rd, vd, H, W, 37, opts=dataclasses.replace(opts, skip=skip), coarse_field=fields[0],
                        fine_field=fields[1])
    assert 0.3 < exact["fine"]["acc"].mean() and exact["fine"]["rgb"].std() > 0.02  # not empty
    for level in ("coarse", "fine"):
        assert psnr(fast[level]["rgb"], exact[level]["rgb"]) > 40
        assert psnr(fast[level]["acc"], exact[level]["acc"]) > 40
    assert 0.2 < skip.skipped_fraction("fine") < 1.0, skip.stats
    # coarse_rgb=False (the evaluation paths): the same fine image
    lean = render_image(ro, rd, vd, H, W, 37, opts=dataclasses.replace(opts, skip=skip), coarse_field=fields[0],
                        fine_field=fields[1], coarse_rgb=False)
    assert set(lean["coarse"]) == {"depth", "acc"}
    np.testing.assert_allclose(lean["fine"]["rgb"], fast["fine"]["rgb"], atol=1e-6)
    with pytest.raises(ValueError, match="noise"):
        render_image(ro, rd, vd, H, W, 37, opts=dataclasses.replace(opts, skip=skip, noise_std=1.0),
                     coarse_field=fields[0], fine_field=fields[1])


def style_colour_net(kind, ex):
    """The style MLP alone, or with a hash grid (--style_encoding hash) whose table holds large
    random features, so that the colour changes from cell to cell of its finest level."""
    if kind == "mlp":
        return StyleMLP(D=3, W=24, input_ch=ex.out_dim, latent_dim=5)
    from models.hash_grid import HashGrid
    from models.style_mlp import HashStyleMLP
    grid = HashGrid(np.full(3, -1.25), np.full(3, 1.25), n_levels=4, n_features=2, log2_size=10, base_res=4,
                    max_res=64)
    grid.table.assign(jt.array(np.random.default_rng(3).normal(0, 1.0, grid.table.shape).astype(np.float32)))
    return HashStyleMLP(grid, D=3, W=24, input_ch=ex.out_dim, latent_dim=5)


@pytest.mark.parametrize("kind,top_k,surface", [("mlp", 0, False), ("hash", 0, False), ("hash", 1, True),
                                                 ("mlp", 4, False)])
def test_stylized_colours_fast_equal_exact(kind, top_k, surface):
    """render_image_colors (all styles of a frame over one geometry) and render_image with
    share_color: fast against exact, with the style stage's own fields and a style MLP (alone,
    or reading a hash grid as fern_quick's does), coloured at every sample or at each ray's
    top_k heaviest (one point at the expected depth: fern_quick's videos)."""
    nets, ex, fields = biased_nerf_fields(12, use_viewdirs=False)
    jt.set_global_seed(8)
    mlp = style_colour_net(kind, ex)
    latents = [jt.array(np.random.default_rng(k).normal(0, 2, 5).astype(np.float32)) for k in range(3)]
    rng = np.random.default_rng(9)
    H, W = 9, 11
    ro = np.concatenate([rng.uniform(-0.8, 0.8, (H * W, 2)), -np.ones((H * W, 1))], -1).astype(np.float32)
    rd = np.concatenate([rng.uniform(-0.2, 0.2, (H * W, 2)), np.full((H * W, 1), 2.0)], -1).astype(np.float32)
    lo, hi = np.full(3, -1.25, np.float32), np.full(3, 1.25, np.float32)
    opts = RenderOptions(near=0.0, far=1.0, n_samples=32, n_fine=32, top_k=top_k, surface=surface)
    skip = Skipping(nerf_grid(fields, lo, hi, 32))
    fast_opts = dataclasses.replace(opts, skip=skip)
    coarse = StyleField(nets[0], mlp, ex, None)
    colours = StyleColors(nets[1], mlp, ex, latents)
    exact = render_image_colors(ro, rd, H, W, 40, coarse, colours, 3, opts=opts, keys=("rgb", "depth", "acc"))
    fast = render_image_colors(ro, rd, H, W, 40, coarse, colours, 3, opts=fast_opts, keys=("rgb", "depth", "acc"))
    assert not np.allclose(exact[0]["fine"]["rgb"], exact[1]["fine"]["rgb"])
    for k in range(3):
        for level in ("coarse", "fine"):
            assert psnr(fast[k][level]["rgb"], exact[k][level]["rgb"]) > 40, (k, level)
            np.testing.assert_allclose(fast[k][level]["acc"], exact[k][level]["acc"], atol=2e-3)
    if top_k:  # colours at k points a ray; the densities skipped as without top_k
        assert skip.skipped_fraction("coarse") > 0.3 and skip.skipped_fraction("fine") > 0.1, skip.stats
    else:
        assert skip.skipped_fraction("colour") > 0.3, skip.stats
    # one colour through render_image(share_color=True) (the interpolated-style video, evaluation)
    one = [StyleField(n, mlp, ex, latents[1]) for n in nets]
    alone = render_image(ro, rd, None, H, W, 40, opts=fast_opts, coarse_field=one[0], fine_field=one[1],
                         share_color=True)
    for level in ("coarse", "fine"):
        np.testing.assert_allclose(alone[level]["rgb"], fast[1][level]["rgb"], atol=1e-5)


def test_fast_options_follow_render_mode(tmp_path):
    """--render_mode: fast adds the grid of the checkpoint (built at
    grid_resolution(N_samples) and cached in the experiment folder), exact leaves opts alone."""
    from types import SimpleNamespace

    from core.config import parse_args
    from render.fast import fast_options, grid_resolution
    from render.occupancy import cache_path, load_grid
    assert parse_args([]).render_mode == "fast" and parse_args(["--render_mode", "exact"]).render_mode == "exact"
    _, _, fields = biased_nerf_fields(14)
    scene = SimpleNamespace(hwf=(6, 8, 7.0), poses=np.stack([pose(tz=2.0), pose(0.2, 0.0, 2.0)])[:, :3])
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=8)
    exact = fast_options(opts, parse_args(["--render_mode", "exact"]), scene, fields, str(tmp_path), 7)
    assert exact is opts and not list(tmp_path.iterdir())
    logs = []
    fast = fast_options(opts, parse_args(["--render_mode", "fast"]), scene, fields, str(tmp_path), 7, logs.append)
    assert isinstance(fast.skip, Skipping) and fast == opts  # the skipping is not a sampling option
    grid = load_grid(cache_path(str(tmp_path), 7))
    assert grid.resolution == (grid_resolution(8),) * 3 == (16, 16, 16) and len(logs) == 1
    assert grid_resolution(64) == 128 and grid_resolution(1000) == 256
    # a top_k render (--style_render_samples) skips as well
    top = dataclasses.replace(opts, top_k=1)
    fast_top = fast_options(top, parse_args(["--render_mode", "fast"]), scene, fields, str(tmp_path), 8)
    assert isinstance(fast_top.skip, Skipping) and fast_top.top_k == 1
    assert os.path.exists(cache_path(str(tmp_path), 8))


def test_a_full_grid_keeps_the_exact_renderer(tmp_path):
    """A NeRF dense everywhere (an untrained one's fog) leaves no cell to skip: fast_options
    builds and caches the grid, says so and keeps the options exact."""
    from types import SimpleNamespace

    from core.config import parse_args
    from render.fast import FULL, fast_options
    from render.occupancy import cache_path, load_grid
    nets, _, fields = biased_nerf_fields(14)
    for net in nets:  # a large positive density everywhere
        net.alpha_linear.weight.assign(jt.zeros(net.alpha_linear.weight.shape))
        net.alpha_linear.bias.assign(jt.full(net.alpha_linear.bias.shape, 4.0))
    scene = SimpleNamespace(hwf=(6, 8, 7.0), poses=np.stack([pose(tz=2.0), pose(0.2, 0.0, 2.0)])[:, :3])
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=8)
    logs = []
    kept = fast_options(opts, parse_args(["--render_mode", "fast"]), scene, fields, str(tmp_path), 7, logs.append)
    assert kept is opts and kept.skip is None
    assert load_grid(cache_path(str(tmp_path), 7)).fraction >= FULL
    assert "nothing to skip, the exact renderer renders" in logs[-1]


def test_trained_fern_nerf_fast_equals_exact(fern_dir, fern_long_expdir):
    """The committed fern NeRF: random held-out pixels, fast (a 32^3 grid of its own density)
    against exact, both levels, with view directions."""
    from core.config import parse_args
    from dataset.rays import image_rays
    from pipeline import nerf_stage
    from pipeline.stages import load_scene
    from render.fast import fast_options
    args = parse_args(["--config", "configs/fern.txt", "--datadir", fern_dir, "--device", "cpu", "--matmul", "fp32",
                       "--render_mode", "fast"])
    scene = load_scene(args)
    system, step, _ = nerf_stage.load_trained_nerf(args, fern_long_expdir)
    fields = system.fields()
    exact = RenderOptions.from_args(args, scene, "eval")
    fast = fast_options(exact, args, scene, fields, fern_long_expdir, step,
                        settings=GridSettings(resolution=32, samples_per_cell=2))
    H, W, focal = scene.hwf
    rng = np.random.default_rng(0)
    for i in scene.i_test:
        ro, rd, vd = image_rays(int(H), int(W), focal, scene.poses[i], ndc=True)
        px = rng.choice(len(ro), 300, replace=False)
        out = {name: render_image(ro[px], rd[px], vd[px], 1, len(px), 4096, opts=opts, coarse_field=fields[0],
                                  fine_field=fields[1])
               for name, opts in (("exact", exact), ("fast", fast))}
        for level in ("coarse", "fine"):
            assert psnr(out["fast"][level]["rgb"], out["exact"][level]["rgb"]) > 40, (i, level)
        gt = scene.images[i].reshape(-1, 3)[px]
        assert psnr(out["fast"]["fine"]["rgb"].reshape(-1, 3), gt) > 21  # and both are fern
    assert fast.skip.skipped_fraction("coarse") > 0.4 and fast.skip.skipped_fraction("fine") > 0.15, fast.skip.stats


def test_render_benchmark_runs_on_the_committed_nerf(fern_dir, fern_long_expdir, capsys):
    """bench/bench_render.py at a tiny scale (the previous test's grid, read from the cache; a
    16^3 grid with one probe a cell misses some of fern's density: 37 dB on view 8):
    both paths' frames/s, the skipped rows, the PSNR."""
    import os
    import re
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import bench_render
    assert bench_render.main(["--expdir", fern_long_expdir, "--datadir", fern_dir, "--stride", "64",
                              "--resolution", "32", "--samples_per_cell", "2", "--path_frames", "1",
                              "--extra", "--device", "cpu", "--matmul", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "(ready in" in out and "occupancy grid" not in out  # not built again
    photo = re.search(r"^photoreal: exact ([\d.]+) frames/s, fast ([\d.]+).*fine ([\d.]+), coarse ([\d.]+)$", out, re.M)
    styled = re.search(r"^stylized \(2 styles.*colour ([\d.]+); worst PSNR fast vs exact ([\d.]+)$", out, re.M)
    assert photo and styled, out
    assert float(photo.group(3)) > 40 and float(photo.group(4)) > 40 and float(styled.group(2)) > 40, out
    assert 0 < float(styled.group(1)) < 1
    # fern_quick's videos: one point a ray at its expected depth, a style MLP reading a hash grid
    assert bench_render.main(["--expdir", fern_long_expdir, "--datadir", fern_dir, "--stride", "64",
                              "--resolution", "32", "--samples_per_cell", "2", "--path_frames", "1",
                              "--extra", "--device", "cpu", "--matmul", "fp32", "--style_render_samples", "1",
                              "--style_point", "surface", "--style_encoding", "hash", "--hash_log2_size", "12"]) == 0
    out = capsys.readouterr().out
    styled = re.search(r"^stylized \(2 styles.*hash encoding.*1 point\(s\) a ray \(expected depth\)\): exact "
                       r"[\d.]+ frames/s per style, fast [\d.]+ .*fine density ([\d.]+),.*worst PSNR fast vs exact "
                       r"([\d.]+)$", out, re.M)
    assert styled and float(styled.group(1)) > 0 and float(styled.group(2)) > 40, out
    assert bench_render.main(["--expdir", fern_long_expdir, "--stride", "0"]) == 2
    assert "--stride must be >= 1" in capsys.readouterr().err
