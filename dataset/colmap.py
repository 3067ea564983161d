"""COLMAP sparse model -> LLFF's poses_bounds.npy, so that a user's own capture loads like fern.

LLFF scenes come from COLMAP through LLFF's `imgs2poses.py` (a separate repository with its own
dependencies).  This module does what that script does, with NumPy only, from the model COLMAP
writes (`sparse/0/` with cameras, images and points3D, binary `.bin` or text `.txt`;
https://colmap.github.io/format.html):

- COLMAP stores per registered image the world-to-camera rotation (a unit quaternion, w first)
  and translation, with the camera looking down +z, x right, y down.  The camera-to-world pose
  is the inverse; its rotation columns are reordered from [right, down, forward] to LLFF's
  [down, right, back] (which `dataset.llff.llff_to_opengl` turns into OpenGL's [right, up, back]).
- Each view's column (H, W, focal) is its camera's size and first focal length (fx).
- Near/far bounds per view: the 0.1 and 99.9 percentiles of the depths (along the viewing axis)
  of the 3D points that image observes.
- Views are ordered by image name, as `dataset.llff.list_image_files` lists the image files.

Like LLFF, a pinhole model is assumed: lens distortion and an off-centre principal point are
not modelled (a warning says so; undistort the images with COLMAP's image_undistorter first).
"""
import os
import struct
from dataclasses import dataclass

import numpy as np

from dataset.camera_paths import quaternion_to_rotation
from dataset.llff import list_image_files

# COLMAP's camera models: id -> (name, number of parameters); the focal length is params[0]
CAMERA_MODELS = {
    0: ("SIMPLE_PINHOLE", 3), 1: ("PINHOLE", 4), 2: ("SIMPLE_RADIAL", 4), 3: ("RADIAL", 5),
    4: ("OPENCV", 8), 5: ("OPENCV_FISHEYE", 8), 6: ("FULL_OPENCV", 12), 7: ("FOV", 5),
    8: ("SIMPLE_RADIAL_FISHEYE", 4), 9: ("RADIAL_FISHEYE", 5), 10: ("THIN_PRISM_FISHEYE", 12),
}
MODEL_IDS = {name: i for i, (name, _) in CAMERA_MODELS.items()}
PINHOLE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")
# parameters before the distortion terms: (f, cx, cy) or (fx, fy, cx, cy)
_PRINCIPAL_AT = {"SIMPLE_PINHOLE": 1, "SIMPLE_RADIAL": 1, "RADIAL": 1, "SIMPLE_RADIAL_FISHEYE": 1,
                 "RADIAL_FISHEYE": 1}
BOUND_PERCENTILES = (0.1, 99.9)  # LLFF's imgs2poses


class ColmapError(ValueError):
    """A COLMAP model that cannot be converted; the message names the file and what was expected."""


@dataclass
class Camera:
    id: int
    model: str
    width: int
    height: int
    params: np.ndarray  # float64, CAMERA_MODELS' count

    @property
    def focal(self):
        return float(self.params[0])

    @property
    def principal_point(self):
        k = _PRINCIPAL_AT.get(self.model, 2)
        return float(self.params[k]), float(self.params[k + 1])


@dataclass
class Image:
    id: int
    qvec: np.ndarray       # [4] float64, world-to-camera rotation (w, x, y, z)
    tvec: np.ndarray       # [3] float64, world-to-camera translation
    camera_id: int
    name: str
    point3d_ids: np.ndarray  # int64 ids of the 3D points this image observes (-1: none)


# ---------------------------------------------------------------- reading

class _Bytes:
    """Sequential little-endian reads from a binary file's contents; truncation -> ColmapError."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        self.pos = 0

    def read(self, fmt):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ColmapError(f"{self.path} ends early (byte {len(self.data)}, needed {self.pos + size}): "
                              "truncated or not a COLMAP binary model file")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self, dtype, count):
        dtype = np.dtype(dtype).newbyteorder("<")
        size = dtype.itemsize * count
        if self.pos + size > len(self.data):
            raise ColmapError(f"{self.path} ends early (byte {len(self.data)}, needed {self.pos + size}): "
                              "truncated or not a COLMAP binary model file")
        out = np.frombuffer(self.data, dtype, count, self.pos)
        self.pos += size
        return out

    def name(self):
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise ColmapError(f"{self.path}: an image name has no terminating NUL byte (truncated file?)")
        text = self.data[self.pos:end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return text

    def check_end(self):
        if self.pos != len(self.data):
            raise ColmapError(f"{self.path} has {len(self.data) - self.pos} bytes after its last record: "
                              "not a COLMAP binary model file of this layout")


def _model_name(model_id, path):
    if model_id not in CAMERA_MODELS:
        raise ColmapError(f"{path}: unknown camera model id {model_id} (COLMAP's are 0..{len(CAMERA_MODELS) - 1})")
    return CAMERA_MODELS[model_id][0]


def read_cameras_bin(path):
    r = _Bytes(path)
    cameras = {}
    for _ in range(r.read("Q")[0]):
        cam_id, model_id, width, height = r.read("iiQQ")
        model = _model_name(model_id, path)
        params = r.array(np.float64, CAMERA_MODELS[model_id][1]).astype(np.float64)
        cameras[cam_id] = Camera(cam_id, model, int(width), int(height), params)
    r.check_end()
    return cameras


def read_images_bin(path):
    r = _Bytes(path)
    images = {}
    for _ in range(r.read("Q")[0]):
        image_id, qw, qx, qy, qz, tx, ty, tz, camera_id = r.read("idddddddi")
        name = r.name()
        n2d = r.read("Q")[0]
        # per 2D point: x, y (doubles) and the 3D point id (int64)
        rows = r.array(np.dtype([("x", "<f8"), ("y", "<f8"), ("id", "<i8")]), n2d)
        images[image_id] = Image(image_id, np.array([qw, qx, qy, qz]), np.array([tx, ty, tz]),
                                 camera_id, name, rows["id"].astype(np.int64))
    r.check_end()
    return images


def read_points3d_bin(path):
    """-> (ids [P] int64, xyz [P,3] float64)."""
    r = _Bytes(path)
    count = r.read("Q")[0]
    ids, xyz = np.empty(count, np.int64), np.empty((count, 3))
    for k in range(count):
        point_id, x, y, z, _, _, _, _error, track_len = r.read("QdddBBBdQ")
        r.array(np.int32, 2 * track_len)  # the track (image id, 2D point index): not needed
        ids[k], xyz[k] = point_id, (x, y, z)
    r.check_end()
    return ids, xyz


def _text_rows(path):
    """Non-comment, non-empty lines of a COLMAP text file as lists of tokens, with line numbers."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if line and not line.startswith("#"):
                yield number, line.split()


def _parse(path, number, convert, tokens, what):
    try:
        return [convert(t) for t in tokens]
    except ValueError:
        raise ColmapError(f"{path} line {number}: cannot read {what} from {' '.join(tokens)!r}") from None


def read_cameras_txt(path):
    cameras = {}
    for number, tok in _text_rows(path):
        if len(tok) < 4 or tok[1] not in MODEL_IDS:
            raise ColmapError(f"{path} line {number}: expected 'CAMERA_ID MODEL WIDTH HEIGHT PARAMS...' "
                              f"with a COLMAP model name ({', '.join(MODEL_IDS)}), got {' '.join(tok)!r}")
        n_params = CAMERA_MODELS[MODEL_IDS[tok[1]]][1]
        if len(tok) != 4 + n_params:
            raise ColmapError(f"{path} line {number}: model {tok[1]} takes {n_params} parameters, "
                              f"got {len(tok) - 4}")
        cam_id, width, height = _parse(path, number, int, [tok[0], tok[2], tok[3]], "camera id and size")
        params = np.array(_parse(path, number, float, tok[4:], "camera parameters"))
        cameras[cam_id] = Camera(cam_id, tok[1], width, height, params)
    return cameras


def read_images_txt(path):
    """Two lines per image: 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', then 'X Y POINT3D_ID ...'."""
    with open(path, encoding="utf-8", errors="replace") as f:
        rows = [(n, line.rstrip("\n")) for n, line in enumerate(f, 1) if not line.startswith("#")]
    images = {}
    k = 0
    while k < len(rows):
        number, header = rows[k]
        tok = header.split()
        if not tok:  # a blank line where a header could be (the 2D points line can be empty too)
            k += 1
            continue
        if len(tok) < 10:
            raise ColmapError(f"{path} line {number}: expected 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME', "
                              f"got {header!r}")
        image_id, camera_id = _parse(path, number, int, [tok[0], tok[8]], "image and camera ids")
        q_t = np.array(_parse(path, number, float, tok[1:8], "the pose"))
        name = " ".join(tok[9:])  # names may hold spaces
        points = rows[k + 1][1].split() if k + 1 < len(rows) else []
        if len(points) % 3:
            raise ColmapError(f"{path} line {number + 1}: expected triples 'X Y POINT3D_ID' for image {name}")
        ids = np.array(_parse(path, number + 1, int, points[2::3], "3D point ids"), np.int64)
        images[image_id] = Image(image_id, q_t[:4], q_t[4:], camera_id, name, ids)
        k += 2
    return images


def read_points3d_txt(path):
    ids, xyz = [], []
    for number, tok in _text_rows(path):
        if len(tok) < 8:
            raise ColmapError(f"{path} line {number}: expected 'POINT3D_ID X Y Z R G B ERROR TRACK...', "
                              f"got {' '.join(tok)!r}")
        ids.append(_parse(path, number, int, tok[:1], "the point id")[0])
        xyz.append(_parse(path, number, float, tok[1:4], "the point position"))
    return np.array(ids, np.int64), np.array(xyz, np.float64).reshape(-1, 3)


_READERS = {".bin": (read_cameras_bin, read_images_bin, read_points3d_bin),
            ".txt": (read_cameras_txt, read_images_txt, read_points3d_txt)}


def find_model(scene_dir):
    """The COLMAP model folder of a scene: scene_dir itself if it holds one, else sparse/0 or sparse."""
    for d in (scene_dir, os.path.join(scene_dir, "sparse", "0"), os.path.join(scene_dir, "sparse")):
        if any(os.path.isfile(os.path.join(d, "images" + ext)) for ext in _READERS):
            return d
    raise ColmapError(f"no COLMAP model found in {scene_dir}, {scene_dir}/sparse/0 or {scene_dir}/sparse: "
                      "expected cameras, images and points3D (.bin or .txt) as COLMAP's mapper writes them")


def read_model(model_dir):
    """-> (cameras {id: Camera}, images {id: Image}, (point ids [P], xyz [P,3])) of a model folder,
    binary files preferred when both kinds are there."""
    for ext, readers in _READERS.items():
        paths = [os.path.join(model_dir, f"{n}{ext}") for n in ("cameras", "images", "points3D")]
        if os.path.isfile(paths[1]):
            missing = [p for p in paths if not os.path.isfile(p)]
            if missing:
                raise ColmapError(f"COLMAP model in {model_dir} is incomplete: {', '.join(missing)} not found")
            return tuple(read(p) for read, p in zip(readers, paths))
    raise ColmapError(f"{model_dir} holds no COLMAP model (images.bin or images.txt)")


# ---------------------------------------------------------------- poses and bounds

def camera_to_world(image):
    """[3,4] camera-to-world pose (COLMAP's camera axes: x right, y down, z forward)."""
    R = quaternion_to_rotation(image.qvec)  # COLMAP's quaternions are (w, x, y, z) too
    return np.concatenate([R.T, (-R.T @ image.tvec)[:, None]], 1)


def _check_cameras(cameras, images, where, warn):
    used = sorted({im.camera_id for im in images})
    missing = [c for c in used if c not in cameras]
    if missing:
        raise ColmapError(f"{where}: images refer to camera ids {missing} that the cameras file lacks")
    first = cameras[used[0]]
    for c in used[1:]:
        cam = cameras[c]
        if (cam.width, cam.height) != (first.width, first.height) or abs(cam.focal - first.focal) > 5e-3 * first.focal:
            raise ColmapError(f"{where}: cameras {first.id} ({first.width}x{first.height}, f={first.focal:.1f}) and "
                              f"{cam.id} ({cam.width}x{cam.height}, f={cam.focal:.1f}) differ; an LLFF scene has "
                              "one camera (run COLMAP with a single shared camera)")
    for cam in (cameras[c] for c in used):
        if cam.model not in PINHOLE_MODELS:
            warn(f"COLMAP camera {cam.id} is {cam.model}: its lens distortion is ignored (as LLFF does); "
                 "undistort the images first (colmap image_undistorter) for exact geometry")
        if cam.model == "PINHOLE" and abs(cam.params[1] - cam.params[0]) > 1e-2 * cam.params[0]:
            warn(f"COLMAP camera {cam.id} has fx={cam.params[0]:.1f}, fy={cam.params[1]:.1f}: fx is used for both")
        cx, cy = cam.principal_point
        if abs(cx - cam.width / 2) > 0.01 * cam.width or abs(cy - cam.height / 2) > 0.01 * cam.height:
            warn(f"COLMAP camera {cam.id}'s principal point ({cx:.1f}, {cy:.1f}) is off the image centre "
                 f"({cam.width / 2:.1f}, {cam.height / 2:.1f}): the centre is assumed (as LLFF does)")


def poses_bounds(cameras, images, points, where="COLMAP model", warn=print):
    """LLFF's [N,17] poses_bounds array and the image names, in name order.

    Per view: the [3,5] matrix [down, right, back, camera centre, (H, W, focal)] flattened
    row-major, then near and far (BOUND_PERCENTILES of the observed points' depths)."""
    if not images:
        raise ColmapError(f"{where} has no registered images")
    ordered = sorted(images.values(), key=lambda im: im.name)
    _check_cameras(cameras, ordered, where, warn)
    point_ids, xyz = points
    index = {int(p): k for k, p in enumerate(point_ids)}
    rows = []
    for im in ordered:
        cam = cameras[im.camera_id]
        c2w = camera_to_world(im)
        right, down, forward, centre = c2w.T
        ids = [index[p] for p in im.point3d_ids if p >= 0 and int(p) in index]
        if not ids:
            raise ColmapError(f"{where}: image {im.name} observes no 3D points, so its depth range is unknown "
                              "(was it registered with too few matches?)")
        depths = (xyz[ids] - centre) @ forward
        if np.percentile(depths, 50) <= 0:
            raise ColmapError(f"{where}: most 3D points seen by {im.name} are behind its camera: broken model?")
        near, far = np.percentile(depths, BOUND_PERCENTILES)
        if near <= 1e-3 * far:  # stray points at or behind the camera: NDC needs near > 0
            warn(f"{im.name}: some 3D points it observes lie at or behind its camera; near bound "
                 f"{near:.4g} raised to {1e-3 * far:.4g}")
            near = 1e-3 * far
        pose = np.stack([down, right, -forward, centre, [cam.height, cam.width, cam.focal]], 1)
        rows.append(np.concatenate([pose.ravel(), [near, far]]))
    return np.array(rows), [im.name for im in ordered]


def check_image_folder(names, image_dir):
    """The registered names must be exactly the images in image_dir (as the LLFF loader lists
    them); otherwise a ColmapError naming what is missing or extra."""
    files = [os.path.basename(f) for f in list_image_files(image_dir)]
    registered = {os.path.basename(n) for n in names}
    extra = [f for f in files if f not in registered]
    missing = sorted(registered - set(files))
    if extra:
        raise ColmapError(f"{len(extra)} image(s) in {image_dir} were not registered by COLMAP: "
                          f"{', '.join(extra[:10])}{' ...' if len(extra) > 10 else ''}. Move them out of "
                          "the folder (each image needs a pose) or register them")
    if missing:
        raise ColmapError(f"COLMAP registered image(s) that {image_dir} lacks: {', '.join(missing[:10])}"
                          f"{' ...' if len(missing) > 10 else ''}")
    order = [os.path.basename(n) for n in names]
    if order != files:
        raise ColmapError(f"the image names in {image_dir} sort differently from COLMAP's names "
                          "(subfolders in the names?): rename them so both orders agree")


def colmap_to_poses_bounds(scene_dir, model_dir=None, warn=print):
    """Read the scene's COLMAP model and return (poses_bounds [N,17], image names); the names are
    checked against scene_dir/images when that folder exists."""
    model_dir = model_dir or find_model(scene_dir)
    cameras, images, points = read_model(model_dir)
    arr, names = poses_bounds(cameras, images, points, where=f"COLMAP model {model_dir}", warn=warn)
    image_dir = os.path.join(scene_dir, "images")
    if os.path.isdir(image_dir):
        check_image_folder(names, image_dir)
    return arr, names
