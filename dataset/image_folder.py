"""Style and content image folders: listing, decoding to float RGB, resizing, random crops.

Images are float32 [H,W,3] in [0,1].  Decoding uses OpenCV (8- and 16-bit PNG, JPEG incl.
CMYK, palette and grey images); grey images become RGB and transparent ones are composited
onto white, each with a logging.info line saying so.
"""
import logging
import os

import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
log = logging.getLogger("stylenerf.image_folder")


class ImageFolderError(ValueError):
    """A missing/empty folder or an image file that cannot be decoded (the message names it)."""


def list_images(folder, verify=False):
    """Image files (jpg/jpeg/png, any letter case) of `folder`, sorted by file name.

    Other files, sub-folders and hidden files (".name", e.g. macOS "._x.jpg") are ignored.
    verify=True decodes every file so that a broken one is reported now, not mid-training.
    Raises ImageFolderError for a missing folder or one without images.
    """
    if not os.path.isdir(folder):
        raise ImageFolderError(f"image folder {folder} not found")
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(IMAGE_EXTS) and not n.startswith(".")
                   and os.path.isfile(os.path.join(folder, n)))
    if not names:
        raise ImageFolderError(f"image folder {folder} holds no .jpg/.jpeg/.png files")
    paths = [os.path.join(folder, n) for n in names]
    if verify:
        for p in paths:
            _decode(p)
    return paths


def undecodable(paths, progress=None):
    """[(path, reason)] for each file of `paths` that does not decode (each decoded once).
    progress: a description to show a progress bar under (large folders)."""
    bad = []
    if progress:
        from tqdm import tqdm
        paths = tqdm(paths, desc=progress, dynamic_ncols=True, leave=False)
    for p in paths:
        try:
            _decode(p)
        except ImageFolderError as e:
            bad.append((p, str(e)))
    return bad


def list_images_of(folders, verify=False):
    """list_images over one or more folders given as 'a,b' (e.g. --content_dir: a scene's views
    and the style images themselves), in that order."""
    names = [f.strip() for f in folders.split(",") if f.strip()]
    if not names:
        raise ImageFolderError(f"no image folder given ({folders!r})")
    return [p for folder in names for p in list_images(folder, verify)]


def _decode(path):
    """File -> OpenCV array [H,W] / [H,W,3] BGR / [H,W,4] BGRA, uint8 or uint16."""
    import cv2
    if not os.path.isfile(path):
        raise ImageFolderError(f"image file {path} not found")
    with open(path, "rb") as f:
        data = f.read()
    # imdecode, not imread: imread returns a cut-short JPEG greyed out, with a warning only
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if img is None or img.size == 0:
        raise ImageFolderError(f"cannot decode image {path} (expected a valid PNG or JPEG file)")
    return img


def _to_float(img):
    if img.dtype == np.uint8:
        return img.astype(np.float32) / np.float32(255)
    if img.dtype == np.uint16:
        return img.astype(np.float32) / np.float32(65535)
    return np.clip(img.astype(np.float32), 0, 1)


def load_image(path, max_side=None, short_side=None):
    """Image file -> float32 [H,W,3] RGB in [0,1].

    Grey -> RGB; RGBA (or grey + alpha) -> composited onto white; 16-bit -> /65535.
    max_side: shrink (never enlarge) so that the longer side is at most max_side.
    short_side: resize (up or down) so that the shorter side equals short_side.
    """
    if max_side is not None and short_side is not None:
        raise ValueError("load_image: give max_side or short_side, not both")
    if max_side is not None and int(max_side) <= 0:
        raise ValueError(f"load_image: max_side must be positive, got {max_side}")
    raw = _decode(path)
    img = _to_float(raw)
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 4:
        log.info("%s has an alpha channel: composited onto white", path)
        alpha = img[:, :, 3:4]
        img = img[:, :, :3] * alpha + (1.0 - alpha)
    elif channels == 2:  # grey + alpha (OpenCV usually expands this to 4 channels already)
        log.info("%s is grey with alpha: composited onto white and converted to RGB", path)
        img = img[:, :, :1] * img[:, :, 1:2] + (1.0 - img[:, :, 1:2])
    if img.shape[2] == 1:
        log.info("%s is greyscale: converted to RGB", path)
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 3:
        img = img[:, :, ::-1]  # OpenCV's BGR -> RGB
    else:
        raise ImageFolderError(f"image {path} has {channels} channels; expected 1 to 4")
    img = np.ascontiguousarray(img, dtype=np.float32)
    if short_side is not None:
        img = resize_short_side(img, short_side)
    elif max_side is not None and max(img.shape[:2]) > max_side:
        s = max_side / max(img.shape[:2])
        img = _resize(img, max(1, round(img.shape[0] * s)), max(1, round(img.shape[1] * s)))
    return img


def _resize(img, h, w):
    """float32 [H,W,3] -> [h,w,3]: INTER_AREA to shrink, bicubic to enlarge (clipped to [0,1])."""
    import cv2
    H, W = img.shape[:2]
    if (h, w) == (H, W):
        return img
    interp = cv2.INTER_AREA if h <= H and w <= W else cv2.INTER_CUBIC
    out = cv2.resize(img, (int(w), int(h)), interpolation=interp)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def resize_short_side(img, size):
    """Resize float32 [H,W,3] so the shorter side is `size` (aspect kept, longer side truncated
    as torchvision's Resize(int) does). Returns [h,w,3]."""
    size = int(size)
    if size <= 0:
        raise ValueError(f"resize_short_side: size must be positive, got {size}")
    H, W = img.shape[:2]
    if H <= W:
        h, w = size, max(1, int(size * W / H))
    else:
        h, w = max(1, int(size * H / W)), size
    return _resize(img, h, w)


def random_crop(img, size, rng):
    """Random crop of float32 [H,W,3] to size (int or (h, w)) using rng (numpy Generator/RandomState).

    An image smaller than the crop in either side is first enlarged (aspect kept) just enough to
    hold it, so this never fails on small images (the original crashed on them).
    Returns float32 [h,w,3] (a copy).
    """
    ch, cw = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if ch <= 0 or cw <= 0:
        raise ValueError(f"random_crop: crop size must be positive, got {size}")
    H, W = img.shape[:2]
    if H < ch or W < cw:
        s = max(ch / H, cw / W)
        img = _resize(img, max(ch, int(np.ceil(H * s))), max(cw, int(np.ceil(W * s))))
        H, W = img.shape[:2]
    draw = rng.integers if hasattr(rng, "integers") else rng.randint
    y = int(draw(0, H - ch + 1))
    x = int(draw(0, W - cw + 1))
    return np.ascontiguousarray(img[y:y + ch, x:x + cw], dtype=np.float32)
