"""evaluation/figures.py: the picture strip's layout and file names, the bar chart file."""
import os

import imageio.v2 as imageio
import numpy as np

from evaluation.figures import GAP, bar_chart, picture_strip, strip_name, write_strip


def test_picture_strip_puts_images_side_by_side_at_one_height():
    rng = np.random.default_rng(0)
    a, b = rng.random((10, 12, 3)).astype(np.float32), rng.random((10, 7, 3)).astype(np.float32)
    style = np.zeros((20, 30, 3), np.float32)
    style[:, 15:] = 1.0  # left half black, right half white
    strip = picture_strip([a, b, style], 10)
    assert strip.shape == (10, 12 + GAP + 7 + GAP + 15, 3)
    np.testing.assert_array_equal(strip[:, :12], a)  # frames at their own height stay untouched
    np.testing.assert_array_equal(strip[:, 12:12 + GAP], 1.0)
    np.testing.assert_array_equal(strip[:, 12 + GAP:19 + GAP], b)
    resized = strip[:, 19 + 2 * GAP:]
    assert resized[:, :7].max() < 0.01 and resized[:, 8:].min() > 0.99  # halved, aspect kept


def test_write_strip_and_names(tmp_path):
    frame = np.full((6, 8, 3), 0.5, np.float32)
    name = write_strip(str(tmp_path), "woman with hat.jpg", frame, frame, frame, np.ones((12, 8, 3), np.float32))
    assert name == "strip_woman_with_hat.png" == strip_name("woman with hat.jpg")
    img = imageio.imread(os.path.join(tmp_path, name))
    assert img.shape == (6, 3 * 8 + 4 + 3 * GAP, 3) and img.dtype == np.uint8
    assert img[0, 0, 0] == 128
    # a.jpg and a.png do not share a file
    taken = [write_strip(str(tmp_path), "a.jpg", frame, frame, frame, frame)]
    taken.append(write_strip(str(tmp_path), "a.png", frame, frame, frame, frame, taken=taken))
    taken.append(write_strip(str(tmp_path), "a.gif", frame, frame, frame, frame, taken=taken))
    assert taken == ["strip_a.png", "strip_a_2.png", "strip_a_3.png"]


def test_bar_chart_writes_a_picture(tmp_path):
    table = [{"style": "a.jpg", "method": m, "k1_mean": v, "k7_mean": 2 * v}
             for m, v in (("stylized NeRF", 0.02), ("per-frame AdaIN", 0.05))]
    bar_chart(str(tmp_path / "c.png"), table, (1, 7))
    assert imageio.imread(tmp_path / "c.png").shape[2] == 3
