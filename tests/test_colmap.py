"""dataset/colmap.py and scripts/colmap_to_llff.py: COLMAP models (written here by an independent
writer of COLMAP's binary and text formats) -> poses_bounds.npy, checked through the project's
own LLFF loader and ray generator, and by a round trip of fern's real poses."""
import os
import struct

import imageio.v2 as imageio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dataset.colmap import ColmapError, colmap_to_poses_bounds, find_model, read_model
from dataset.llff import load_llff, read_poses_bounds
from dataset.rays import get_rays_np

H, W, F = 48, 64, 50.0
MODEL_PARAMS = {"SIMPLE_PINHOLE": [F, W / 2, H / 2], "PINHOLE": [F, F, W / 2, H / 2],
                "SIMPLE_RADIAL": [F, W / 2, H / 2, 0.0]}
MODEL_IDS = {"SIMPLE_PINHOLE": 0, "PINHOLE": 1, "SIMPLE_RADIAL": 2}


# ---------------------------------------------------------------- an independent COLMAP writer

def qvec_of(R):
    x, y, z, w = Rotation.from_matrix(R).as_quat()  # scipy: scalar last
    return np.array([w, x, y, z])


def write_model(folder, cameras, images, points, binary=True):
    """cameras: [(id, model, w, h, params)]; images: [(id, R_w2c, t_w2c, camera_id, name,
    [(x, y, point_id)])]; points: [(id, xyz, [(image_id, point2d_idx)])]."""
    os.makedirs(folder, exist_ok=True)
    if binary:
        with open(os.path.join(folder, "cameras.bin"), "wb") as f:
            f.write(struct.pack("<Q", len(cameras)))
            for cid, model, w, h, params in cameras:
                f.write(struct.pack("<iiQQ", cid, MODEL_IDS[model], w, h))
                f.write(struct.pack(f"<{len(params)}d", *params))
        with open(os.path.join(folder, "images.bin"), "wb") as f:
            f.write(struct.pack("<Q", len(images)))
            for iid, R, t, cid, name, obs in images:
                f.write(struct.pack("<i7di", iid, *qvec_of(R), *t, cid))
                f.write(name.encode() + b"\0")
                f.write(struct.pack("<Q", len(obs)))
                for x, y, pid in obs:
                    f.write(struct.pack("<ddq", x, y, pid))
        with open(os.path.join(folder, "points3D.bin"), "wb") as f:
            f.write(struct.pack("<Q", len(points)))
            for pid, xyz, track in points:
                f.write(struct.pack("<Q3d3BdQ", pid, *xyz, 128, 128, 128, 0.5, len(track)))
                for iid, idx in track:
                    f.write(struct.pack("<ii", iid, idx))
        return
    with open(os.path.join(folder, "cameras.txt"), "w") as f:
        f.write("# Camera list with one line of data per camera:\n")
        for cid, model, w, h, params in cameras:
            f.write(f"{cid} {model} {w} {h} " + " ".join(repr(float(p)) for p in params) + "\n")
    with open(os.path.join(folder, "images.txt"), "w") as f:
        f.write("# Image list with two lines of data per image:\n#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n")
        for iid, R, t, cid, name, obs in images:
            f.write(f"{iid} " + " ".join(repr(float(v)) for v in (*qvec_of(R), *t)) + f" {cid} {name}\n")
            f.write(" ".join(f"{x!r} {y!r} {pid}" for x, y, pid in obs) + "\n")
    with open(os.path.join(folder, "points3D.txt"), "w") as f:
        f.write("# 3D point list with one line of data per point:\n")
        for pid, xyz, track in points:
            f.write(f"{pid} " + " ".join(repr(float(v)) for v in xyz) + " 128 128 128 0.5 "
                    + " ".join(f"{i} {k}" for i, k in track) + "\n")


def synthetic_scene(n_views=6, seed=0):
    """Forward-facing cameras (COLMAP axes: looking down +z) around the origin, and 3D points:
    the first 40 on the rays of integer pixels of camera 0, the rest random in front.
    Returns (c2ws [N,3,4], points [P,3], pixel_points [(i, j, index)] of camera 0)."""
    rng = np.random.default_rng(seed)
    c2ws = []
    for k in range(n_views):
        R = Rotation.from_rotvec(rng.normal(0, 0.05, 3)).as_matrix()
        c = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.4, 0.4), rng.uniform(-0.1, 0.1)])
        c2ws.append(np.concatenate([R, c[:, None]], 1))
    pixel_points, pts = [], []
    R0, c0 = c2ws[0][:, :3], c2ws[0][:, 3]
    for k in range(40):
        i, j = int(rng.integers(16, W - 16)), int(rng.integers(12, H - 12))
        d = np.array([(i - W / 2) / F, (j - H / 2) / F, 1.0])  # COLMAP pixel coordinates (i, j)
        pts.append(c0 + R0 @ d * rng.uniform(3, 8))
        pixel_points.append((i, j, k))
    for _ in range(160):
        pts.append([rng.uniform(-1.5, 1.5), rng.uniform(-1.2, 1.2), rng.uniform(3, 8)])
    return np.array(c2ws), np.array(pts), pixel_points


def project(c2w, P):
    """COLMAP's pinhole projection (u, v, depth) of world points P [P,3] into a camera."""
    R, c = c2w[:, :3], c2w[:, 3]
    Xc = (P - c) @ R  # R^T (P - c), row-wise
    return F * Xc[:, 0] / Xc[:, 2] + W / 2, F * Xc[:, 1] / Xc[:, 2] + H / 2, Xc[:, 2]


def build_model(folder, c2ws, P, binary=True, model="SIMPLE_PINHOLE", names=None, cameras=None):
    names = names or [f"img_{k:03d}.png" for k in range(len(c2ws))]
    images, tracks = [], {p: [] for p in range(len(P))}
    for k, c2w in enumerate(c2ws):
        u, v, z = project(c2w, P)
        seen = np.nonzero((z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H))[0]
        obs = [(float(u[p]), float(v[p]), int(p) + 1) for p in seen]  # COLMAP ids start at 1
        for idx, p in enumerate(seen):
            tracks[int(p)].append((k + 1, idx))
        R = c2w[:, :3]
        images.append((k + 1, R.T, -R.T @ c2w[:, 3], 1, names[k], obs))
    points = [(p + 1, P[p], tracks[p]) for p in range(len(P)) if tracks[p]]
    cameras = cameras or [(1, model, W, H, MODEL_PARAMS[model])]
    write_model(folder, cameras, images, points, binary)
    return names


def make_scene(tmp_path, binary=True, n_views=6, **kw):
    c2ws, P, pixel_points = synthetic_scene(n_views)
    scene = str(tmp_path / "scene")
    names = build_model(os.path.join(scene, "sparse", "0"), c2ws, P, binary, **kw)
    os.makedirs(os.path.join(scene, "images"))
    for n in names:
        imageio.imwrite(os.path.join(scene, "images", n), np.zeros((H, W, 3), np.uint8))
    return scene, c2ws, P, pixel_points


# ---------------------------------------------------------------- conversion

def test_binary_and_text_models_agree(tmp_path):
    c2ws, P, _ = synthetic_scene()
    build_model(str(tmp_path / "bin"), c2ws, P, binary=True)
    build_model(str(tmp_path / "txt"), c2ws, P, binary=False)
    cams_b, ims_b, pts_b = read_model(str(tmp_path / "bin"))
    cams_t, ims_t, pts_t = read_model(str(tmp_path / "txt"))
    assert cams_b.keys() == cams_t.keys() and ims_b.keys() == ims_t.keys()
    for k in ims_b:
        assert ims_b[k].name == ims_t[k].name
        np.testing.assert_allclose(ims_b[k].qvec, ims_t[k].qvec, atol=1e-12)
        np.testing.assert_array_equal(ims_b[k].point3d_ids, ims_t[k].point3d_ids)
    np.testing.assert_array_equal(pts_b[0], pts_t[0])
    np.testing.assert_allclose(pts_b[1], pts_t[1], atol=1e-12)
    a, _ = colmap_to_poses_bounds(str(tmp_path), str(tmp_path / "bin"))
    b, _ = colmap_to_poses_bounds(str(tmp_path), str(tmp_path / "txt"))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("binary", [True, False])
def test_loaded_scene_sees_the_points_where_colmap_does(tmp_path, binary):
    """Through load_llff (axes, rescale, recentring): every point projects, with the loaded
    OpenGL pose and focal, to COLMAP's pixel; camera 0's integer-pixel rays from
    dataset.rays.get_rays_np pass through their points; bounds are the depth percentiles."""
    scene_dir, c2ws, P, pixel_points = make_scene(tmp_path, binary)
    arr, names = colmap_to_poses_bounds(scene_dir)
    np.save(os.path.join(scene_dir, "poses_bounds.npy"), arr)
    scene = load_llff(scene_dir, factor=1, llffhold=0)
    assert scene.hwf == (H, W, F) and [os.path.basename(p) for p in scene.image_paths] == names
    homog = np.concatenate([P * scene.scale, np.ones((len(P), 1))], 1)
    P_scene = (homog @ scene.recenter_transform.astype(np.float64).T)[:, :3]
    for k, c2w in enumerate(c2ws):
        u, v, z = project(c2w, P)
        seen = (z > 0) & (u >= 0) & (u < W) & (v >= 0) & (v < H)
        R, t = scene.poses[k, :, :3].astype(np.float64), scene.poses[k, :, 3].astype(np.float64)
        Xc = (P_scene - t) @ R  # OpenGL camera: x right, y up, looking down -z
        np.testing.assert_allclose(W / 2 + F * Xc[:, 0] / -Xc[:, 2], u, atol=1e-4)
        np.testing.assert_allclose(H / 2 - F * Xc[:, 1] / -Xc[:, 2], v, atol=1e-4)
        depths = z[seen] * scene.scale
        np.testing.assert_allclose(scene.bounds[k], np.percentile(depths, [0.1, 99.9]), rtol=1e-5)
    rays_o, rays_d = get_rays_np(H, W, F, scene.poses[0])
    for i, j, p in pixel_points:
        o, d = rays_o[j, i].astype(np.float64), rays_d[j, i].astype(np.float64)
        off = P_scene[p] - o
        miss = np.linalg.norm(off - (off @ d) / (d @ d) * d)  # distance of the point from the ray
        assert miss < 1e-4 * np.linalg.norm(off), (i, j, miss)


def test_fern_poses_survive_a_round_trip_through_colmap(fern_dir, tmp_path):
    """fern's real poses_bounds.npy -> a COLMAP model of those cameras -> poses_bounds again:
    the same 15 pose values per view and the same (H, W, focal)."""
    poses, bounds = read_poses_bounds(os.path.join(fern_dir, "poses_bounds.npy"))
    h, w, f = poses[0, :, 4]
    rng = np.random.default_rng(1)
    images, points, pid = [], [], 1
    for k, p in enumerate(poses):
        down, right, back, centre = p[:, 0], p[:, 1], p[:, 2], p[:, 3]
        R_c2w = np.stack([right, down, -back], 1)  # COLMAP's camera axes
        obs = []
        for depth in rng.uniform(bounds[k, 0], bounds[k, 1], 20):
            X = centre + R_c2w @ np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 1.0]) * depth
            points.append((pid, X, [(k + 1, len(obs))]))
            obs.append((0.0, 0.0, pid))
            pid += 1
        images.append((k + 1, R_c2w.T, -R_c2w.T @ centre, 1, f"IMG_{k:04d}.JPG", obs))
    model = str(tmp_path / "sparse" / "0")
    write_model(model, [(1, "SIMPLE_RADIAL", int(w), int(h), [f, w / 2, h / 2, 0.01])], images, points)
    warnings = []
    arr, names = colmap_to_poses_bounds(str(tmp_path), warn=warnings.append)
    assert names == [f"IMG_{k:04d}.JPG" for k in range(len(poses))]
    np.testing.assert_allclose(arr[:, :15].reshape(-1, 3, 5), poses, atol=1e-9)
    assert np.all(arr[:, 15] > 0) and np.all(arr[:, 15] < arr[:, 16])
    assert any("SIMPLE_RADIAL" in m and "distortion is ignored" in m for m in warnings)


def test_cli_writes_a_loadable_scene_and_keeps_an_existing_file(tmp_path, capsys):
    from scripts.colmap_to_llff import main
    scene_dir, *_ = make_scene(tmp_path)
    assert main([scene_dir]) == 0
    assert "wrote" in capsys.readouterr().out
    scene = load_llff(scene_dir, factor=1, llffhold=0)
    assert scene.num_views == 6
    assert main([scene_dir]) == 2
    assert "exists already; --force replaces it" in capsys.readouterr().err
    assert main([scene_dir, "--force"]) == 0


# ---------------------------------------------------------------- errors

def test_missing_and_incomplete_models(tmp_path):
    with pytest.raises(ColmapError, match="no COLMAP model found in"):
        find_model(str(tmp_path))
    c2ws, P, _ = synthetic_scene()
    build_model(str(tmp_path / "m"), c2ws, P)
    os.remove(tmp_path / "m" / "points3D.bin")
    with pytest.raises(ColmapError, match=r"incomplete: .*points3D.bin not found"):
        read_model(str(tmp_path / "m"))


def test_truncated_binary_file_is_named(tmp_path):
    c2ws, P, _ = synthetic_scene()
    build_model(str(tmp_path), c2ws, P)
    path = tmp_path / "images.bin"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(ColmapError, match=r"images.bin ends early"):
        read_model(str(tmp_path))


def test_bad_text_line_is_named(tmp_path):
    c2ws, P, _ = synthetic_scene()
    build_model(str(tmp_path), c2ws, P, binary=False)
    with open(tmp_path / "cameras.txt", "a") as f:
        f.write("2 PINHOLE 64 48 50.0\n")
    with pytest.raises(ColmapError, match=r"cameras.txt line \d+: model PINHOLE takes 4 parameters, got 1"):
        read_model(str(tmp_path))


def test_unregistered_images_are_listed(tmp_path):
    scene_dir, *_ = make_scene(tmp_path)
    imageio.imwrite(os.path.join(scene_dir, "images", "img_999.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(ColmapError, match="not registered by COLMAP: img_999.png"):
        colmap_to_poses_bounds(scene_dir)


def test_cameras_of_different_focal_lengths_are_refused(tmp_path):
    c2ws, P, _ = synthetic_scene(n_views=2)
    build_model(str(tmp_path), c2ws, P)
    cams, images, points = read_model(str(tmp_path))
    from dataset.colmap import Camera, poses_bounds
    cams[2] = Camera(2, "SIMPLE_PINHOLE", W, H, np.array([2 * F, W / 2, H / 2]))
    images[2].camera_id = 2
    with pytest.raises(ColmapError, match="one camera"):
        poses_bounds(cams, images, points)


def test_image_without_points_is_refused(tmp_path):
    c2ws, P, _ = synthetic_scene(n_views=2)
    build_model(str(tmp_path), c2ws, P)
    cams, images, points = read_model(str(tmp_path))
    images[2].point3d_ids = np.full(3, -1, np.int64)
    from dataset.colmap import poses_bounds
    with pytest.raises(ColmapError, match="img_001.png observes no 3D points"):
        poses_bounds(cams, images, points)
