"""dataset/image_folder.py: real style images, odd formats made on the spot, resizing and crops."""
import logging
import os

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest

from dataset.image_folder import (ImageFolderError, list_images, load_image, random_crop,
                                  resize_short_side)


def test_real_styles_listed_sorted_and_loadable(styles_dir):
    paths = list_images(styles_dir)
    assert len(paths) == 20
    names = [os.path.basename(p) for p in paths]
    assert names == sorted(os.listdir(styles_dir))
    assert names[0] == "antimonocromatismo.jpg" and "sketch.png" in names
    for p in (paths[0], os.path.join(styles_dir, "sketch.png")):
        img = load_image(p)
        ref = imageio.imread(p)
        ref = np.repeat(ref[..., None], 3, 2) if ref.ndim == 2 else ref[..., :3]
        assert img.dtype == np.float32 and img.shape == ref.shape[:2] + (3,)
        # same decoded pixels as an independent reader (JPEG decoders may differ by a level or two)
        assert np.abs(img * 255 - ref).mean() < 1.0


def test_listing_rules(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.JpEg", "notes.txt", "d.gif", ".hidden.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [os.path.basename(p) for p in list_images(str(tmp_path))] == ["a.jpg", "b.PNG", "c.JpEg"]
    with pytest.raises(ImageFolderError, match="cannot decode image .*a.jpg"):
        list_images(str(tmp_path), verify=True)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ImageFolderError, match="nope not found"):
        list_images(str(tmp_path / "nope"))
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ImageFolderError, match="holds no .jpg"):
        list_images(str(tmp_path))


def test_corrupt_and_missing_files(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageFolderError, match="broken.png"):
        load_image(str(bad))
    with pytest.raises(ImageFolderError, match="gone.jpg not found"):
        load_image(str(tmp_path / "gone.jpg"))


def test_grey_becomes_rgb(tmp_path, caplog):
    grey = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    imageio.imwrite(str(tmp_path / "g.png"), grey)
    with caplog.at_level(logging.INFO, logger="stylenerf.image_folder"):
        img = load_image(str(tmp_path / "g.png"))
    assert "greyscale" in caplog.text
    assert img.shape == (12, 10, 3)
    for c in range(3):
        np.testing.assert_allclose(img[..., c], grey / 255.0, atol=1e-6)


def test_rgba_composited_on_white(tmp_path, caplog):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0] = 255          # red
    rgba[:3, :, 3] = 255        # top half opaque
    rgba[3:, :, 3] = 0          # bottom half transparent
    rgba[5, 7] = [0, 0, 255, 51]  # 20 % blue
    imageio.imwrite(str(tmp_path / "a.png"), rgba)
    with caplog.at_level(logging.INFO, logger="stylenerf.image_folder"):
        img = load_image(str(tmp_path / "a.png"))
    assert "alpha" in caplog.text
    np.testing.assert_allclose(img[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(img[4, 0], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(img[5, 7], [0.8, 0.8, 1.0], atol=1e-6)


def test_16_bit_images(tmp_path):
    rgb16 = np.zeros((5, 7, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 32768, 1000
    cv2.imwrite(str(tmp_path / "c.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    img = load_image(str(tmp_path / "c.png"))
    np.testing.assert_allclose(img[2, 3], [1.0, 32768 / 65535, 1000 / 65535], atol=1e-6)
    grey16 = (np.arange(35, dtype=np.uint16) * 1800).reshape(5, 7)
    imageio.imwrite(str(tmp_path / "g16.png"), grey16)
    np.testing.assert_allclose(load_image(str(tmp_path / "g16.png"))[..., 1], grey16 / 65535.0, atol=1e-6)


def test_load_with_sizes(styles_dir):
    path = os.path.join(styles_dir, "la_muse.jpg")
    full = load_image(path)
    small = load_image(path, max_side=100)
    assert max(small.shape[:2]) == 100
    assert abs(small.shape[0] / small.shape[1] - full.shape[0] / full.shape[1]) < 0.02
    short = load_image(path, short_side=64)
    assert min(short.shape[:2]) == 64
    with pytest.raises(ValueError):
        load_image(path, max_side=10, short_side=10)


def test_resize_short_side_shapes_and_values():
    img = np.full((30, 50, 3), 0.25, np.float32)
    out = resize_short_side(img, 12)
    assert out.shape == (12, 20, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, 0.25, atol=1e-6)
    assert resize_short_side(np.zeros((50, 30, 3), np.float32), 60).shape == (100, 60, 3)
    assert resize_short_side(np.zeros((7, 9, 3), np.float32), 256).shape == (256, 329, 3)


def test_random_crop_in_image_and_on_small_images():
    rng = np.random.default_rng(0)
    img = np.random.default_rng(1).random((20, 30, 3), dtype=np.float32)
    seen = set()
    for _ in range(50):
        crop = random_crop(img, 8, rng)
        assert crop.shape == (8, 8, 3)
        # the crop is a window of the image
        hits = [(y, x) for y in range(13) for x in range(23) if np.array_equal(img[y:y + 8, x:x + 8], crop)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) > 20  # offsets vary
    # smaller than the crop (like fern at factor 8 vs a 512 crop): enlarged first, never fails
    tiny = np.random.default_rng(2).random((6, 9, 3), dtype=np.float32)
    crop = random_crop(tiny, (16, 12), rng)
    assert crop.shape == (16, 12, 3) and crop.dtype == np.float32
    assert 0.0 <= crop.min() and crop.max() <= 1.0
    assert random_crop(tiny, 6, np.random.RandomState(0)).shape == (6, 6, 3)


def test_a_cut_short_jpeg_is_not_decoded_grey(tmp_path, styles_dir):
    """OpenCV's imread gives such a file back half grey with a warning only."""
    data = open(os.path.join(styles_dir, "la_muse.jpg"), "rb").read()
    cut = tmp_path / "la_muse.jpg"
    cut.write_bytes(data[:int(len(data) * 0.7)])
    with pytest.raises(ImageFolderError, match="cannot decode image"):
        load_image(str(cut))
