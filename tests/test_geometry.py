"""pipeline/geometry.py: NDC inversion, geometry poses, and the cached geometry data of a NeRF.

The "NeRF" here is a stub system whose fields are an analytic opaque slab, so the rendered
surface points have a known place in the world.
"""
import json
import os
from types import SimpleNamespace

import jittor as jt
import numpy as np
import pytest

from core.config import parse_args
from dataset.camera_paths import quaternion_to_rotation
from dataset.rays import get_rays_np, ndc_rays_np
from pipeline import geometry
from pipeline.geometry import geometry_poses, load_or_generate, ndc_to_world
from render import occupancy

H, W, FOCAL = 6, 8, 7.0
SURFACE_Z = -2.0          # world plane the slab starts at (cameras sit near z = 0, looking down -z)
FINE_RGB = (0.7, 0.5, 0.3)


def ndc_forward(p, H, W, focal, near=1.0):
    """World point (camera at the origin looking down -z) -> NeRF's NDC point, float64."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    return np.stack([-focal / (W / 2) * x / z, -focal / (H / 2) * y / z, 1 + 2 * near / z], -1)


def test_ndc_to_world_inverts_the_ndc_map():
    rng = np.random.default_rng(0)
    z = -rng.uniform(1.05, 80.0, 500)
    # points inside the camera's view frustum (and a little beyond it)
    x = rng.uniform(-1, 1, 500) * (W / 2) / FOCAL * -z * 1.2
    y = rng.uniform(-1, 1, 500) * (H / 2) / FOCAL * -z * 1.2
    world = np.stack([x, y, z], -1)
    back = ndc_to_world(ndc_forward(world, H, W, FOCAL), H, W, FOCAL)
    assert back.dtype == np.float32 and back.shape == world.shape
    np.testing.assert_allclose(back, world, rtol=1e-4, atol=1e-4 * np.abs(world).max(-1, keepdims=True).min())
    # another near plane: z' = 1 + 2 near / z
    back = ndc_to_world(ndc_forward(world, H, W, FOCAL, near=1.5), H, W, FOCAL, near=1.5)
    np.testing.assert_allclose(back, world, rtol=1e-4, atol=1e-3)


def random_pose(rng, max_angle=0.15, max_shift=0.3):
    """A forward-facing camera: small rotation, centre near the origin."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(0, max_angle)
    q = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
    c = rng.uniform(-max_shift, max_shift, 3)
    return np.concatenate([quaternion_to_rotation(q), c[:, None]], 1).astype(np.float32)


def test_expected_ndc_points_land_on_the_world_rays():
    """o_ndc + t d_ndc mapped back to the world lies on o + s d, further along for larger t."""
    rng = np.random.default_rng(1)
    for _ in range(3):
        c2w = random_pose(rng)
        o, d = get_rays_np(H, W, FOCAL, c2w)
        o, d = o.reshape(-1, 3), d.reshape(-1, 3)
        o_ndc, d_ndc = ndc_rays_np(H, W, FOCAL, 1.0, o, d)
        ts = np.sort(rng.uniform(0.0, 0.98, 4))
        s_prev = None
        for t in ts:
            p = ndc_to_world(o_ndc + t * d_ndc, H, W, FOCAL).astype(np.float64)
            rel = p - o
            cross = np.cross(rel, d)
            assert (np.linalg.norm(cross, axis=-1) <= 1e-4 * np.linalg.norm(rel, axis=-1) * np.linalg.norm(d, axis=-1)).all()
            s = (rel * d).sum(-1) / (d * d).sum(-1)
            assert (s > 0).all()
            if s_prev is not None:
                assert (s > s_prev).all()
            s_prev = s
        # t = 0 is the near plane z = -1
        p0 = ndc_to_world(o_ndc, H, W, FOCAL)
        np.testing.assert_allclose(p0[:, 2], -1.0, atol=1e-5)


def fake_scene(n_views=3, seed=2):
    rng = np.random.default_rng(seed)
    poses = np.stack([random_pose(rng, max_angle=0.08, max_shift=0.1) for _ in range(n_views)])
    return SimpleNamespace(hwf=(H, W, FOCAL), poses=poses, bounds=np.tile([[1.5, 4.0]], (n_views, 1)),
                           near_far=lambda ndc: (0.0, 1.0) if ndc else (0.9 * 1.5, 4.0),
                           focal=FOCAL, i_train=np.arange(n_views), i_test=np.zeros(0, np.int64))


def make_args(ndc=True, **over):
    # the exact renderer unless a test asks for the fast one (its occupancy grid at 128 samples
    # would have 256^3 cells)
    opts = dict(gen_factor=1, N_samples=128, N_samples_fine=32, chunk=20, render_mode="exact")
    opts.update(over)
    argv = [] if ndc else ["--no_ndc"]
    for k, v in opts.items():
        argv += [f"--{k}", str(v)]
    return parse_args(argv)


class SlabSystem:
    """Stub NeRF system: opaque matter behind the world plane z = SURFACE_Z (1 unit thick).

    The fields see points in the space rays are rendered in (NDC or world), as the renderer's
    fields do; the coarse and fine fields differ in colour so the test can tell which was used.
    """

    def __init__(self, ndc):
        self.ndc = ndc

    def _field(self, colour):
        ndc = self.ndc

        class Field:  # called for (rgb, sigma), as NeRFField; .density for the fast renderer's grid
            @staticmethod
            def density(pts):
                z = pts[..., 2]
                if ndc:  # world z -> z' = 1 + 2 / z (grows with distance)
                    lo, hi = 1 + 2 / SURFACE_Z, 1 + 2 / (SURFACE_Z - 1.0)
                else:
                    lo, hi = SURFACE_Z - 1.0, SURFACE_Z
                return ((z >= lo) & (z <= hi)).float32() * 2000.0 - 1000.0

            def __call__(self, pts, viewdirs=None):
                rgb = jt.ones(tuple(pts.shape[:2]) + (3,), dtype="float32") * jt.array(np.float32(colour))
                return rgb, self.density(pts)
        return Field()

    def fields(self):
        return self._field((0.2, 0.4, 0.6)), self._field(FINE_RGB)


@pytest.fixture
def count_renders(monkeypatch):
    calls = []
    real = geometry.render_image

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)
    monkeypatch.setattr(geometry, "render_image", counting)
    return calls


def quiet(*_):
    pass


def test_geometry_poses_with_gen_factor_1_are_the_scene_poses():
    scene = fake_scene(n_views=4)
    poses = geometry_poses(make_args(gen_factor=1), scene)
    np.testing.assert_array_equal(poses, scene.poses)
    assert poses.dtype == np.float32
    # gen_factor 0.5: two frames per interval, the key poses kept, the last pose at the end
    poses = geometry_poses(make_args(gen_factor=0.5), scene)
    assert len(poses) == 2 * 3 + 1
    np.testing.assert_array_equal(poses[::2], scene.poses)


@pytest.mark.parametrize("ndc", [True, False])
def test_slab_points_are_in_world_coordinates(tmp_path, ndc, count_renders):
    scene = fake_scene()
    geo = load_or_generate(make_args(ndc), scene, str(tmp_path), SlabSystem(ndc), nerf_step=10, log=quiet)
    assert len(count_renders) == 3
    assert geo.n_views == 3 and geo.hwf == (H, W, FOCAL)
    assert geo.rgb.shape == (3, H, W, 3) and geo.depth.shape == (3, H, W) and geo.points.shape == (3, H, W, 3)
    assert all(a.dtype == np.float32 for a in (geo.rgb, geo.depth, geo.points, geo.c2ws))
    np.testing.assert_array_equal(geo.c2ws, scene.poses)
    # the fine level's colour
    np.testing.assert_allclose(geo.rgb, np.broadcast_to(FINE_RGB, geo.rgb.shape), atol=2e-3)
    for v in range(3):
        o, d = get_rays_np(H, W, FOCAL, scene.poses[v])
        p = geo.points[v].astype(np.float64)
        # on the pixel's world ray, in front of the camera ...
        rel = p - o
        assert (np.linalg.norm(np.cross(rel, d), axis=-1)
                <= 1e-4 * np.linalg.norm(rel, axis=-1) * np.linalg.norm(d, axis=-1)).all()
        assert ((rel * d).sum(-1) > 0).all()
        # ... at the slab's front face (within about half a sample spacing)
        np.testing.assert_allclose(p[..., 2], SURFACE_Z, atol=0.03)
    if not ndc:  # world-space rays: depth is the ray parameter of the point
        o, d = get_rays_np(H, W, FOCAL, scene.poses[0])
        np.testing.assert_allclose(o + geo.depth[0][..., None] * d, geo.points[0], atol=1e-5)


@pytest.mark.parametrize("ndc", [True, False])
def test_the_fast_renderer_gives_the_exact_geometry(tmp_path, ndc, monkeypatch):
    """--render_mode fast (the default): the views go through the fast renderer (an occupancy
    grid cached in the experiment folder) and give the exact renderer's colours, depths and
    points."""
    scene, system = fake_scene(), SlabSystem(ndc)
    exact = load_or_generate(make_args(ndc, N_samples=32), scene, str(tmp_path / "exact"), system, nerf_step=10,
                             log=quiet)
    skips = []
    real = geometry.render_image

    def recording(*a, **k):
        skips.append(k["opts"].skip)
        return real(*a, **k)
    monkeypatch.setattr(geometry, "render_image", recording)
    logs = []
    fast = load_or_generate(make_args(ndc, N_samples=32, render_mode="fast"), scene, str(tmp_path / "fast"), system,
                            nerf_step=10, log=logs.append)
    assert len(skips) == 3 and all(s is not None for s in skips)
    assert any(line.startswith("occupancy grid") for line in logs)
    assert os.path.exists(occupancy.cache_path(str(tmp_path / "fast"), 10))
    np.testing.assert_allclose(fast.rgb, exact.rgb, atol=2e-3)
    np.testing.assert_allclose(fast.depth, exact.depth, atol=1e-4)
    np.testing.assert_allclose(fast.points, exact.points, atol=1e-3)
    # and on the slab's front face, within about one coarse sample spacing (32 samples)
    np.testing.assert_allclose(fast.points[..., 2], SURFACE_Z, atol=0.1)


def test_a_cache_of_the_exact_renderer_is_kept_by_the_fast_one(tmp_path, count_renders):
    scene, system, expdir = fake_scene(), SlabSystem(True), str(tmp_path)
    first = load_or_generate(make_args(N_samples=32), scene, expdir, system, nerf_step=10, log=quiet)
    count_renders.clear()
    again = load_or_generate(make_args(N_samples=32, render_mode="fast"), scene, expdir, system, nerf_step=10,
                             log=quiet)
    assert count_renders == []
    assert not os.path.exists(occupancy.cache_path(expdir, 10))  # no grid built for nothing to render
    np.testing.assert_array_equal(again.points, first.points)


def test_cache_is_reused_and_regenerated_when_the_nerf_changes(tmp_path, count_renders):
    scene, args, system, expdir = fake_scene(), make_args(), SlabSystem(True), str(tmp_path)
    first = load_or_generate(args, scene, expdir, system, nerf_step=10, log=quiet)
    assert len(count_renders) == 3
    files = sorted(f for f in os.listdir(os.path.join(expdir, "geometry")) if f.startswith("view_"))
    assert files == ["view_000.npz", "view_001.npz", "view_002.npz"]

    count_renders.clear()
    again = load_or_generate(args, scene, expdir, system, nerf_step=10, log=quiet)
    assert count_renders == []
    for name in ("rgb", "depth", "points", "c2ws"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))

    # a view file lost (e.g. a kill mid-stage): only that view is rendered again
    os.remove(os.path.join(expdir, "geometry", "view_001.npz"))
    load_or_generate(args, scene, expdir, system, nerf_step=10, log=quiet)
    assert len(count_renders) == 1

    # a newer NeRF: everything is regenerated, and the log says why
    count_renders.clear()
    logs = []
    load_or_generate(args, scene, expdir, system, nerf_step=20, log=logs.append)
    assert len(count_renders) == 3
    assert any("stale" in line for line in logs)
    with open(os.path.join(expdir, "geometry", "meta.json")) as f:
        assert json.load(f)["nerf_step"] == 20


def test_cache_follows_the_pose_set(tmp_path, count_renders):
    scene, system, expdir = fake_scene(), SlabSystem(True), str(tmp_path)
    load_or_generate(make_args(), scene, expdir, system, nerf_step=10, log=quiet)
    count_renders.clear()
    geo = load_or_generate(make_args(gen_factor=0.5), scene, expdir, system, nerf_step=10, log=quiet)
    assert len(count_renders) == 5 and geo.n_views == 5
    assert len([f for f in os.listdir(os.path.join(expdir, "geometry")) if f.startswith("view_")]) == 5
    # back to the training poses: no stale view_003/004 files are left to be mistaken for views
    count_renders.clear()
    geo = load_or_generate(make_args(), scene, expdir, system, nerf_step=10, log=quiet)
    assert len(count_renders) == 3 and geo.n_views == 3
    assert len([f for f in os.listdir(os.path.join(expdir, "geometry")) if f.startswith("view_")]) == 3


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong_shape", "meta"])
def test_a_damaged_cache_file_is_rendered_again_with_a_warning(tmp_path, count_renders, damage):
    """A view cut short (full disk, kill) used to stop every rerun with a traceback."""
    scene, args, system, expdir = fake_scene(), make_args(), SlabSystem(True), str(tmp_path)
    first = load_or_generate(args, scene, expdir, system, nerf_step=10, log=quiet)
    folder = os.path.join(expdir, "geometry")
    view = os.path.join(folder, "view_001.npz")
    if damage == "truncated":
        data = open(view, "rb").read()
        open(view, "wb").write(data[:len(data) // 2])
    elif damage == "garbage":
        open(view, "wb").write(b"\0" * 100)
    elif damage == "wrong_shape":
        np.savez(view, rgb=np.zeros((2, 2, 3), np.float16), depth=np.zeros((2, 2)), points=np.zeros((2, 2, 3)))
    else:
        open(os.path.join(folder, "meta.json"), "w").write('{"nerf_step": 1')
    open(os.path.join(folder, "view_002.tmp.npz"), "wb").write(b"partial")  # a kill mid-write
    count_renders.clear()
    logs = []
    again = load_or_generate(args, scene, expdir, system, nerf_step=10, log=logs.append)
    warnings = [line for line in logs if line.startswith("warning:")]
    assert len(warnings) == 1
    if damage == "meta":
        assert "meta.json" in warnings[0] and len(count_renders) == 3
    else:
        assert view in warnings[0] and len(count_renders) == 1
    for name in ("rgb", "depth", "points"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert "view_002.tmp.npz" not in os.listdir(folder)
    count_renders.clear()
    load_or_generate(args, scene, expdir, system, nerf_step=10, log=quiet)
    assert count_renders == []


def test_a_full_disk_while_writing_a_view_names_it_and_leaves_no_partial_file(tmp_path, monkeypatch,
                                                                               count_renders):
    import errno
    scene, args, system, expdir = fake_scene(), make_args(), SlabSystem(True), str(tmp_path)
    real_savez = np.savez

    def full(file, **arrays):  # part of the file written, then write() fails (no file name)
        with open(file, "wb") as f:
            f.write(b"PK\x03\x04 part of a view")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(OSError) as e:
        load_or_generate(args, scene, expdir, system, nerf_step=10, log=quiet)
    assert e.value.filename == os.path.join(expdir, "geometry", "view_000.npz")
    assert sorted(os.listdir(os.path.join(expdir, "geometry"))) == ["meta.json"]
    monkeypatch.setattr(np, "savez", real_savez)
    assert load_or_generate(args, scene, expdir, system, nerf_step=10, log=quiet).n_views == 3


def test_geometry_benchmark_runs_on_the_committed_nerf(fern_dir, fern_long_expdir, capsys):
    """bench/bench_geometry.py at a tiny scale (one view, every 64th pixel, a 32^3 grid): both
    renderers' time a view and how close the fast one's colours, depths and points are."""
    import re
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import bench_geometry
    assert bench_geometry.main(["--expdir", fern_long_expdir, "--datadir", fern_dir, "--stride", "64",
                                "--views", "1", "--resolution", "32", "--samples_per_cell", "2",
                                "--extra", "--device", "cpu", "--matmul", "fp32"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"; 1 views of 16x12 rays; occupancy grid 32\^3, ", out), out  # fern.txt: 1008x756
    times = re.search(r"^exact: ([\d.]+) s a view; fast: ([\d.]+) s a view", out, re.M)
    close = re.search(r"^fast against exact: colour >= ([\d.]+) dB; .* max ([\d.e+-]+); surface points", out, re.M)
    assert times and close, out
    assert float(times.group(1)) > 0 and float(times.group(2)) > 0
    assert float(close.group(1)) > 40, out
    assert bench_geometry.main(["--expdir", fern_long_expdir, "--stride", "0"]) == 2
    assert "--stride must be >= 1" in capsys.readouterr().err
