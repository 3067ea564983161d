"""LLFF scene loader: poses_bounds.npy + images_<factor>/ -> images, poses, bounds, hold-out.

Mirrors nerf-pytorch's load_llff_data (which StylizedNeRF uses):
- poses_bounds.npy is [N,17]: per view a [3,5] matrix (rotation columns [down, right, back],
  the camera centre, and a column (H, W, focal) of the full-resolution images) + (near, far).
- The rotation columns are reordered to [right, up, back] (OpenGL: the camera looks down -z).
- Everything is scaled by sc = 1 / (min bound * bd_factor) so the nearest bound becomes
  1 / bd_factor (NDC's near plane at 1 is then safely in front of all content).
- Recentring: the average pose becomes the identity.
- --spherify (captures all around an object, used with --no_ndc): the point nearest to every
  camera's optical axis becomes the origin, the mean direction from it to the cameras becomes
  +z, and positions and bounds are scaled so that the cameras' RMS distance from it is 1.
- Test views: every llffhold-th view (0, 8, 16 for fern); llffhold=0: all views train.
The images are decoded straight into one float32 array [N,H,W,3] (no extra copies).
"""
import os
import shutil
from dataclasses import dataclass

import numpy as np

from dataset.camera_paths import average_pose, view_matrix

IMAGE_EXTS = (".png", ".jpg", ".jpeg")


class LLFFError(ValueError):
    """A scene folder that cannot be loaded; the message names the file and what was expected."""


@dataclass
class LLFFScene:
    images: np.ndarray              # [N,H,W,3] float32 in [0,1]
    poses: np.ndarray               # [N,3,4] float32 camera-to-world (OpenGL axes), recentred, rescaled
    bounds: np.ndarray              # [N,2] float32 (near, far) per view, rescaled
    hwf: tuple                      # (H, W, focal) at the loaded resolution
    i_train: np.ndarray             # int64 indices of training views
    i_test: np.ndarray              # int64 indices of held-out views
    near_bound: float               # bounds.min()
    far_bound: float                # bounds.max()
    scale: float                    # sc applied to the LLFF positions and bounds
    recenter_transform: np.ndarray  # [4,4] float32: scaled LLFF world (OpenGL axes) -> scene frame
    image_paths: list               # the files, in view order
    datadir: str
    factor: int

    @property
    def H(self):
        return self.hwf[0]

    @property
    def W(self):
        return self.hwf[1]

    @property
    def focal(self):
        return self.hwf[2]

    @property
    def num_views(self):
        return len(self.images)

    def near_far(self, ndc):
        """Ray range for rendering: (0, 1) in NDC, else nerf-pytorch's (0.9 * min bound, max bound)."""
        return (0.0, 1.0) if ndc else (0.9 * self.near_bound, self.far_bound)


# ---------------------------------------------------------------- inputs

def check_factor(factor):
    """Downscale factor as a positive int (4 and 4.0 are fine; 2.5, 0, True are not)."""
    if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)):
        raise LLFFError(f"--factor must be a positive integer, got {factor!r}")
    if not np.isfinite(factor) or factor <= 0 or float(factor) != int(factor):
        raise LLFFError(f"--factor must be a positive integer, got {factor!r}")
    return int(factor)


def read_poses_bounds(path):
    """poses_bounds.npy -> (poses [N,3,5] float64 in LLFF's axes, bounds [N,2] float64)."""
    if not os.path.isfile(path):
        raise LLFFError(f"{path} not found: an LLFF scene folder needs poses_bounds.npy "
                        "([N,17] camera poses and depth bounds, as written by LLFF's imgs2poses.py, "
                        "or by scripts/colmap_to_llff.py from the scene's COLMAP model)")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise LLFFError(f"{path} is not a readable .npy array ({e}); expected [N,17] float values") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 17 or arr.shape[0] == 0:
        raise LLFFError(f"{path} has shape {getattr(arr, 'shape', None)}; expected [N,17] "
                        "(per view a flattened 3x5 pose matrix and near/far bounds)")
    if not np.issubdtype(arr.dtype, np.number):
        raise LLFFError(f"{path} holds {arr.dtype} values; expected floats")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise LLFFError(f"{path} contains NaN or infinite values")
    poses = arr[:, :15].reshape(-1, 3, 5)
    bounds = arr[:, 15:17]
    if np.any(bounds <= 0) or np.any(poses[:, :, 4] <= 0):
        raise LLFFError(f"{path}: bounds and the (H, W, focal) column must be positive")
    return poses, bounds


def list_image_files(folder):
    """Image files (png/jpg/jpeg, any case) of a folder, sorted by name."""
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(folder, n)))
    return [os.path.join(folder, n) for n in names]


def downscale_images(src_dir, dst_dir, factor):
    """Write every image of src_dir, shrunk by `factor` (OpenCV INTER_AREA), as PNG into dst_dir.

    The original used ImageMagick's `mogrify -resize {100/factor}%`; sizes round the same way.
    Written to a temporary folder first, so a failure leaves no half-made dst_dir.
    """
    import cv2
    files = list_image_files(src_dir)
    if not files:
        raise LLFFError(f"{src_dir} holds no png/jpg images to make {dst_dir} from")
    print(f"LLFF: {dst_dir} is missing; downscaling {len(files)} images of {src_dir} by {factor} "
          "(OpenCV INTER_AREA, PNG)", flush=True)
    tmp_dir = dst_dir + ".tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    os.makedirs(tmp_dir)
    try:
        for f in files:
            img = cv2.imread(f, cv2.IMREAD_UNCHANGED)
            if img is None:
                raise LLFFError(f"cannot read image {f} (while making {dst_dir})")
            h, w = img.shape[:2]
            size = (max(1, int(w / factor + 0.5)), max(1, int(h / factor + 0.5)))
            small = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            out = os.path.join(tmp_dir, os.path.splitext(os.path.basename(f))[0] + ".png")
            if not cv2.imwrite(out, small):
                raise LLFFError(f"cannot write {out}")
        os.replace(tmp_dir, dst_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def image_folder_for(datadir, factor):
    """images/ for factor 1, else images_<factor>/ (made from images/ if missing)."""
    full = os.path.join(datadir, "images")
    if factor == 1:
        if not os.path.isdir(full):
            raise LLFFError(f"{full} not found (factor 1 reads the full-resolution images/)")
        return full
    folder = os.path.join(datadir, f"images_{factor}")
    if os.path.isdir(folder):
        return folder
    if not os.path.isdir(full):
        raise LLFFError(f"{folder} not found, and there is no {full} to make it from: "
                        f"choose a factor with an existing images_<factor>/ folder")
    downscale_images(full, folder, factor)
    return folder


def _decode(path):
    """Image file -> array [H,W,C] (uint8/uint16/float), or LLFFError naming the file."""
    import imageio.v2 as imageio
    try:
        img = np.asarray(imageio.imread(path))
    except Exception as e:  # imageio raises many types for corrupt files
        raise LLFFError(f"cannot read image {path}: {e}") from None
    if img.ndim not in (2, 3) or img.size == 0:
        raise LLFFError(f"cannot read image {path}: unexpected array shape {img.shape}")
    return img


def _to_unit_rgb(img, out):
    """Write image [H,W(,C)] into out [H,W,3] float32 in [0,1] (grey -> RGB, alpha dropped)."""
    if img.ndim == 2:
        img = img[:, :, None]
    img = img[:, :, :3] if img.shape[2] >= 3 else img[:, :, :1]
    scale = 1.0 / np.iinfo(img.dtype).max if np.issubdtype(img.dtype, np.integer) else 1.0
    np.multiply(img, np.float32(scale), out=out, casting="unsafe")


def load_images(files, expected_hw, poses_path, factor):
    """Decode files into one float32 array [N,H,W,3]; check sizes against the poses' H, W / factor."""
    first = _decode(files[0])
    H, W = first.shape[:2]
    exp_h, exp_w = expected_hw
    if abs(H - exp_h / factor) > 1.0 or abs(W - exp_w / factor) > 1.0:
        raise LLFFError(f"{files[0]} is {W}x{H}, but {poses_path} says the images are "
                        f"{exp_w:g}x{exp_h:g}, i.e. about {exp_w / factor:.0f}x{exp_h / factor:.0f} "
                        f"at factor {factor}: wrong images_<factor>/ folder or factor?")
    images = np.empty((len(files), H, W, 3), np.float32)
    for k, f in enumerate(files):
        img = first if k == 0 else _decode(f)
        if img.shape[:2] != (H, W):
            raise LLFFError(f"{f} is {img.shape[1]}x{img.shape[0]}, but {files[0]} is {W}x{H}: "
                            "all images of a scene must have the same size")
        _to_unit_rgb(img, images[k])
    return images


# ---------------------------------------------------------------- geometry

def llff_to_opengl(poses):
    """[N,3,5] LLFF columns [down, right, back, t, hwf] -> [N,3,5] with [right, up, back, t, hwf]."""
    return np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:]], 2)


def _to_frame(frame, poses):
    """Poses [N,3,4] expressed in the frame whose camera-to-world [3,4] is `frame`:
    (poses [N,3,4], the world-to-frame transform [4,4])."""
    full = np.eye(4)
    full[:3, :4] = frame
    transform = np.linalg.inv(full)
    homog = np.concatenate([poses, np.tile([[[0.0, 0.0, 0.0, 1.0]]], (len(poses), 1, 1))], 1)
    return (transform @ homog)[:, :3, :4], transform


def recenter_poses(poses):
    """Make the average pose the identity. poses [N,3,4] -> (poses [N,3,4], transform [4,4])."""
    return _to_frame(average_pose(poses), poses)


def nearest_point_to_axes(centres, axes):
    """The point with the least summed squared distance to the lines centre_i + s * axis_i
    ([N,3] each): the solution of sum_i (I - a_i a_i^T) p = sum_i (I - a_i a_i^T) c_i."""
    a = axes / np.linalg.norm(axes, axis=1, keepdims=True)
    proj = np.eye(3)[None] - a[:, :, None] * a[:, None, :]  # onto the plane normal to each axis
    return np.linalg.solve(proj.sum(0), np.einsum("nij,nj->i", proj, centres))


def spherify_poses(poses, bounds):
    """nerf-pytorch's spherify for captures around an object (module docstring). poses [N,3,4]
    (OpenGL axes), bounds [N,2] -> (poses, bounds, transform, scale): a point p maps to
    scale * (transform @ p), transform rigid [4,4]."""
    centre = nearest_point_to_axes(poses[:, :, 3], poses[:, :, 2])
    z = (poses[:, :, 3] - centre).mean(0)  # towards the cameras, on average
    # x, y: any pair completing z; nerf-pytorch takes x along cross((0.1, 0.2, 0.3), z)
    out, transform = _to_frame(view_matrix(z, [0.1, 0.2, 0.3], centre), poses)
    sc = 1.0 / np.sqrt(np.mean(np.sum(out[:, :, 3] ** 2, -1)))  # RMS camera distance -> 1
    out[:, :, 3] *= sc
    return out, bounds * sc, transform, sc


def holdout_split(n, llffhold):
    """(i_train, i_test): every llffhold-th view is held out; llffhold=0 holds out none."""
    if isinstance(llffhold, bool) or int(llffhold) != llffhold or llffhold < 0:
        raise LLFFError(f"--llffhold must be an integer >= 0 (0: no held-out views), got {llffhold!r}")
    all_ids = np.arange(n, dtype=np.int64)
    if llffhold == 0:
        return all_ids, np.zeros(0, np.int64)
    i_test = all_ids[::int(llffhold)]
    return np.setdiff1d(all_ids, i_test), i_test


def load_llff(datadir, factor=8, recenter=True, bd_factor=0.75, spherify=False, llffhold=8):
    """Load an LLFF scene folder. Returns an LLFFScene (see the module docstring)."""
    factor = check_factor(factor)
    if bd_factor is not None and not bd_factor > 0:
        raise LLFFError(f"bd_factor must be positive or None, got {bd_factor!r}")
    if not os.path.isdir(datadir):
        raise LLFFError(f"scene folder {datadir} not found (--datadir)")
    poses_path = os.path.join(datadir, "poses_bounds.npy")
    raw_poses, bounds = read_poses_bounds(poses_path)

    folder = image_folder_for(datadir, factor)
    files = list_image_files(folder)
    if len(files) != len(raw_poses):
        raise LLFFError(f"{folder} holds {len(files)} images but {poses_path} has {len(raw_poses)} "
                        "poses: expected one image per pose")
    images = load_images(files, raw_poses[0, :2, 4], poses_path, factor)
    H, W = images.shape[1:3]
    focal = float(raw_poses[0, 2, 4]) / factor

    poses = llff_to_opengl(raw_poses)[:, :, :4]
    sc = 1.0 if bd_factor is None else 1.0 / (bounds.min() * bd_factor)
    poses[:, :, 3] *= sc
    bounds = bounds * sc
    transform = np.eye(4)
    if recenter:
        poses, transform = recenter_poses(poses)
    if spherify:
        poses, bounds, sph_transform, sph_scale = spherify_poses(poses, bounds)
        # keep recenter_transform rigid on the LLFF world scaled by `scale`: spherify's scale
        # moves into sc, S T S^-1 keeps the rotation and scales the translation
        S = np.diag([sph_scale] * 3 + [1.0])
        transform, sc = S @ sph_transform @ transform @ np.linalg.inv(S), sc * sph_scale
    i_train, i_test = holdout_split(len(poses), llffhold)
    bounds = bounds.astype(np.float32)  # near_bound/far_bound: of the bounds the scene holds
    return LLFFScene(
        images=images, poses=poses.astype(np.float32), bounds=bounds,
        hwf=(int(H), int(W), focal), i_train=i_train, i_test=i_test,
        near_bound=float(bounds.min()), far_bound=float(bounds.max()), scale=float(sc),
        recenter_transform=transform.astype(np.float32), image_paths=files,
        datadir=datadir, factor=factor)
