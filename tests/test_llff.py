"""dataset/llff.py: the real fern scene, an independent recomputation of its poses, and bad inputs."""
import os
import shutil

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest

from dataset.llff import LLFFError, load_llff
from tests.synthetic_scene import write_ring_capture


@pytest.fixture(scope="module")
def fern4(fern_dir):
    return load_llff(fern_dir, factor=4)


@pytest.fixture(scope="module")
def fern_raw(fern_dir):
    return np.load(os.path.join(fern_dir, "poses_bounds.npy"))


def test_fern_images(fern4, fern_dir):
    assert fern4.images.shape == (20, 756, 1008, 3)
    assert fern4.images.dtype == np.float32
    assert fern4.hwf[:2] == (756, 1008) and (fern4.H, fern4.W) == (756, 1008)
    assert 0.0 <= fern4.images.min() and fern4.images.max() <= 1.0
    files = sorted(os.listdir(os.path.join(fern_dir, "images_4")))
    for k in (0, 13):
        ref = imageio.imread(os.path.join(fern_dir, "images_4", files[k]))[..., :3] / 255.0
        np.testing.assert_allclose(fern4.images[k], ref, atol=1e-6)


def test_fern_focal_and_bounds(fern4, fern_raw):
    assert fern4.focal == pytest.approx(fern_raw[0, 14] / 4)
    raw_bounds = fern_raw[:, 15:17]
    sc = 1.0 / (raw_bounds.min() * 0.75)
    assert fern4.scale == pytest.approx(sc)
    np.testing.assert_allclose(fern4.bounds, raw_bounds * sc, rtol=1e-5)
    assert fern4.bounds.dtype == np.float32 and fern4.poses.dtype == np.float32
    assert fern4.near_bound == pytest.approx(1 / 0.75, rel=1e-6)
    assert fern4.far_bound == pytest.approx(raw_bounds.max() * sc, rel=1e-6)
    assert fern4.near_far(True) == (0.0, 1.0)
    assert fern4.near_far(False) == pytest.approx((0.9 / 0.75, raw_bounds.max() * sc))


def test_fern_holdout(fern4, fern_dir):
    assert list(fern4.i_test) == [0, 8, 16]
    assert list(fern4.i_train) == [i for i in range(20) if i not in (0, 8, 16)]
    all_train = load_llff(fern_dir, factor=8, llffhold=0)
    assert list(all_train.i_train) == list(range(20)) and len(all_train.i_test) == 0
    assert all_train.images.shape == (20, 378, 504, 3)
    assert all_train.focal == pytest.approx(fern4.focal / 2)


def test_fern_poses_are_rotations_and_recentred(fern4):
    R = fern4.poses[:, :, :3].astype(np.float64)
    np.testing.assert_allclose(R.transpose(0, 2, 1) @ R, np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-5)
    # average pose (mean centre, normalised summed axes) is the identity
    assert np.abs(fern4.poses[:, :, 3].mean(0)).max() < 1e-5
    back = R[:, :, 2].sum(0)
    up = R[:, :, 1].sum(0)
    np.testing.assert_allclose(back / np.linalg.norm(back), [0, 0, 1], atol=1e-5)
    assert abs(up[0]) < 1e-5 and up[1] > 0


def test_fern_poses_match_raw_file(fern4, fern_raw):
    """Independent check: relative geometry of the raw LLFF poses survives, in OpenGL axes."""
    raw = fern_raw[:, :15].reshape(-1, 3, 5)
    # LLFF columns are [down, right, back]; OpenGL [right, up, back] = raw @ M
    M = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], np.float64)
    R_gl = raw[:, :, :3] @ M
    centres = raw[:, :, 3] * fern4.scale
    T = fern4.recenter_transform.astype(np.float64)
    np.testing.assert_allclose(T[3], [0, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(T[:3, :3] @ R_gl, fern4.poses[:, :, :3], atol=1e-5)
    np.testing.assert_allclose(centres @ T[:3, :3].T + T[:3, 3], fern4.poses[:, :, 3], atol=1e-5)
    # distances between cameras are the raw ones times the scale
    d_raw = np.linalg.norm(raw[3, :, 3] - raw[11, :, 3]) * fern4.scale
    d_new = np.linalg.norm(fern4.poses[3, :, 3] - fern4.poses[11, :, 3])
    assert d_new == pytest.approx(d_raw, rel=1e-5)


def test_no_recenter_keeps_scaled_raw_poses(fern_dir, fern_raw):
    scene = load_llff(fern_dir, factor=8, recenter=False, bd_factor=None)
    raw = fern_raw[:, :15].reshape(-1, 3, 5)
    np.testing.assert_allclose(scene.poses[:, :, 0], raw[:, :, 1], atol=1e-6)   # right
    np.testing.assert_allclose(scene.poses[:, :, 1], -raw[:, :, 0], atol=1e-6)  # up = -down
    np.testing.assert_allclose(scene.poses[:, :, 2:4], raw[:, :, 2:4], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scene.bounds, fern_raw[:, 15:], rtol=1e-6)


# ---------------------------------------------------------------- synthetic scenes

def _write_scene(root, fern_dir, n=3, size=(30, 40), folder="images", hwf_hw=None, seed=0):
    """Tiny LLFF scene: n random PNGs of size (H,W) in root/folder and fern's first n poses."""
    root = str(root)
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(n):
        img = rng.integers(0, 256, size=size + (3,), dtype=np.uint8)
        imageio.imwrite(os.path.join(root, folder, f"img{k:03d}.png"), img)
    pb = np.load(os.path.join(fern_dir, "poses_bounds.npy"))[:n].copy()
    H, W = hwf_hw or size
    pb[:, 4], pb[:, 9], pb[:, 14] = H, W, 50.0
    np.save(os.path.join(root, "poses_bounds.npy"), pb)
    return root


def test_downscale_creates_images_folder(tmp_path, fern_dir, capsys):
    root = _write_scene(tmp_path, fern_dir, n=3, size=(30, 40))
    scene = load_llff(root, factor=2, llffhold=0)
    out = capsys.readouterr().out
    assert "downscaling 3 images" in out and "images_2" in out
    assert os.path.isdir(os.path.join(root, "images_2"))
    assert scene.images.shape == (3, 15, 20, 3)
    assert scene.focal == pytest.approx(25.0)
    src = cv2.imread(os.path.join(root, "images", "img001.png"))
    ref = cv2.resize(src, (20, 15), interpolation=cv2.INTER_AREA)[:, :, ::-1] / 255.0
    np.testing.assert_allclose(scene.images[1], ref, atol=1e-6)
    # the second load reads the folder it made, without downscaling again
    again = load_llff(root, factor=2, llffhold=0)
    assert "downscaling" not in capsys.readouterr().out
    np.testing.assert_array_equal(again.images, scene.images)


def test_factor_one_reads_images_folder(tmp_path, fern_dir):
    root = _write_scene(tmp_path, fern_dir, n=2, size=(30, 40))
    scene = load_llff(root, factor=1)
    assert scene.images.shape == (2, 30, 40, 3) and scene.focal == pytest.approx(50.0)
    ref = imageio.imread(os.path.join(root, "images", "img000.png")) / 255.0
    np.testing.assert_allclose(scene.images[0], ref, atol=1e-6)
    assert list(scene.i_test) == [0] and list(scene.i_train) == [1]


def test_grey_and_rgba_images_become_rgb(tmp_path, fern_dir):
    root = _write_scene(tmp_path, fern_dir, n=2, size=(30, 40))
    grey = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 50
    imageio.imwrite(os.path.join(root, "images", "img000.png"), grey)
    rgba = np.zeros((30, 40, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    imageio.imwrite(os.path.join(root, "images", "img001.png"), rgba)
    scene = load_llff(root, factor=1)
    np.testing.assert_allclose(scene.images[0, :, :, 1], grey / 65535.0, atol=1e-6)
    np.testing.assert_allclose(scene.images[1, 0, 0], [200 / 255.0, 0, 0], atol=1e-6)


# ---------------------------------------------------------------- errors

def _expect(match, *args, **kw):
    with pytest.raises(LLFFError, match=match):
        load_llff(*args, **kw)


def test_error_missing_poses_bounds(tmp_path, fern_dir):
    root = _write_scene(tmp_path, fern_dir)
    os.remove(os.path.join(root, "poses_bounds.npy"))
    _expect("poses_bounds.npy not found", root, factor=1)


@pytest.mark.parametrize("content", ["shape", "columns", "text", "nan", "empty"])
def test_error_malformed_poses_bounds(tmp_path, fern_dir, content):
    root = _write_scene(tmp_path, fern_dir)
    path = os.path.join(root, "poses_bounds.npy")
    pb = np.load(path)
    if content == "shape":
        np.save(path, pb.reshape(-1))
    elif content == "columns":
        np.save(path, pb[:, :15])
    elif content == "text":
        with open(path, "w") as f:
            f.write("not a numpy file\n")
    elif content == "nan":
        pb[1, 3] = np.nan
        np.save(path, pb)
    else:
        np.save(path, np.zeros((0, 17)))
    match = {"shape": r"expected \[N,17\]", "columns": r"expected \[N,17\]", "text": "not a readable .npy",
             "nan": "NaN", "empty": r"expected \[N,17\]"}[content]
    _expect(match, root, factor=1)


def test_error_image_count(tmp_path, fern_dir):
    root = _write_scene(tmp_path, fern_dir, n=3)
    os.remove(os.path.join(root, "images", "img002.png"))
    _expect("holds 2 images but .*poses_bounds.npy has 3 poses", root, factor=1)


def test_error_unreadable_image(tmp_path, fern_dir):
    root = _write_scene(tmp_path, fern_dir, n=3)
    with open(os.path.join(root, "images", "img001.png"), "wb") as f:
        f.write(b"\x89PNG garbage")
    _expect("cannot read image .*img001.png", root, factor=1)


def test_error_different_sizes(tmp_path, fern_dir):
    root = _write_scene(tmp_path, fern_dir, n=3)
    imageio.imwrite(os.path.join(root, "images", "img002.png"), np.zeros((31, 40, 3), np.uint8))
    _expect("img002.png is 40x31.*same size", root, factor=1)


@pytest.mark.parametrize("factor", [0, -2, 2.5, True, "4"])
def test_error_bad_factor_value(tmp_path, fern_dir, factor):
    root = _write_scene(tmp_path, fern_dir)
    _expect("factor must be a positive integer", root, factor=factor)


def test_error_factor_without_folder(tmp_path, fern_dir):
    root = _write_scene(tmp_path, fern_dir, folder="images_4")
    _expect(r"images_2 not found, and there is no .*images to make it from", root, factor=2)
    _expect(r"images not found", root, factor=1)


def test_error_size_inconsistent_with_poses(tmp_path, fern_dir):
    # fern's images_8 presented as images_4
    os.symlink(os.path.join(fern_dir, "images_8"), str(tmp_path / "images_4"))
    shutil.copy(os.path.join(fern_dir, "poses_bounds.npy"), str(tmp_path))
    _expect("image000.png is 504x378.*about 1008x756 at factor 4", str(tmp_path), factor=4)


def test_size_rounding_is_allowed(tmp_path, fern_dir):
    # 41x31 full size, factor 2 -> 20.5x15.5: images of 20x15 or 21x16 are both fine
    root = _write_scene(tmp_path, fern_dir, n=2, size=(16, 21), folder="images_2", hwf_hw=(31, 41))
    assert load_llff(root, factor=2).images.shape == (2, 16, 21, 3)


def test_error_missing_folder(tmp_path):
    _expect("scene folder .* not found", str(tmp_path / "nope"), factor=4)


# ---------------------------------------------------------------- --spherify

def test_nearest_point_to_axes():
    from scipy.optimize import minimize
    from dataset.llff import nearest_point_to_axes
    rng = np.random.default_rng(0)
    target = np.array([0.3, -1.0, 2.0])
    axes = rng.standard_normal((7, 3))
    centres = target + axes * rng.uniform(-3, 3, (7, 1))  # lines through target
    np.testing.assert_allclose(nearest_point_to_axes(centres, axes), target, atol=1e-10)
    centres = rng.standard_normal((7, 3)) * 2  # lines that miss each other

    def cost(p):
        a = axes / np.linalg.norm(axes, axis=1, keepdims=True)
        off = p - centres
        return np.sum(off ** 2) - np.sum(np.sum(off * a, 1) ** 2)
    best = minimize(cost, np.zeros(3), method="BFGS", options={"gtol": 1e-12}).x
    np.testing.assert_allclose(nearest_point_to_axes(centres, axes), best, atol=1e-6)


def test_spherify_centres_the_object_and_scales_the_ring(tmp_path):
    """Every camera looks (nearly) through the origin; the cameras' RMS distance from it is 1;
    the scene is the raw capture under one similarity (scale + the rigid recenter_transform)."""
    root = str(tmp_path)
    target, rows = write_ring_capture(root)
    scene = load_llff(root, factor=1, llffhold=0, spherify=True)
    c = scene.poses[:, :, 3].astype(np.float64)
    assert np.sqrt(np.mean(np.sum(c ** 2, 1))) == pytest.approx(1.0, rel=1e-5)
    back = scene.poses[:, :, 2].astype(np.float64)
    miss = np.linalg.norm(np.cross(c, back), axis=1)  # distance of the origin from each axis
    assert miss.max() < 0.05
    T = scene.recenter_transform.astype(np.float64)
    np.testing.assert_allclose(T[:3, :3] @ T[:3, :3].T, np.eye(3), atol=1e-6)  # rigid
    raw = rows[:, :15].reshape(-1, 3, 5)
    np.testing.assert_allclose(raw[:, :, 3] * scene.scale @ T[:3, :3].T + T[:3, 3], c, atol=1e-5)
    t_scene = T[:3, :3] @ (target * scene.scale) + T[:3, 3]
    assert np.linalg.norm(t_scene) < 0.05  # the object sits at the origin
    R_gl = raw[:, :, :3] @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]], np.float64)
    np.testing.assert_allclose(T[:3, :3] @ R_gl, scene.poses[:, :, :3], atol=1e-5)
    np.testing.assert_allclose(scene.bounds, rows[:, 15:] * scene.scale, rtol=1e-5)
    assert scene.near_far(ndc=False) == pytest.approx((0.9 * scene.bounds.min(), scene.bounds.max()))


def test_spherify_needs_no_ndc():
    from core.config import ConfigError, parse_args
    with pytest.raises(ConfigError, match="--spherify needs --no_ndc"):
        parse_args(["--spherify"])
    assert parse_args(["--spherify", "--no_ndc"]).spherify
