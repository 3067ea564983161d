"""core/media.py: PNG and mp4 writing round-trips through real decoders."""
import imageio.v2 as imageio
import numpy as np
import pytest

from core.media import depth_to_image, to8b, write_png, write_video


def test_png_roundtrip(tmp_path):
    img = np.random.rand(7, 9, 3).astype(np.float32)
    write_png(str(tmp_path / "a.png"), img)
    back = imageio.imread(str(tmp_path / "a.png"))
    np.testing.assert_array_equal(back, to8b(img))


def test_depth_near_is_bright():
    d = np.linspace(1, 2, 50, dtype=np.float32).reshape(5, 10)
    img = depth_to_image(d)
    assert img[0, 0] > img[-1, -1]


def test_video_of_odd_size_is_readable(tmp_path):
    frames = [np.full((47, 63, 3), 40 * i, np.uint8) for i in range(4)]
    path = write_video(str(tmp_path / "odd.mp4"), frames, fps=10)
    got = [f for f in imageio.get_reader(path)]
    assert len(got) == 4 and got[0].shape[:2] in ((48, 64), (47, 63))


def test_video_has_all_frames(tmp_path):
    frames = [np.full((16, 24, 3), i * 20, np.uint8) for i in range(6)]
    path = write_video(str(tmp_path / "v.mp4"), frames, fps=10)
    reader = imageio.get_reader(path)
    got = [f for f in reader]
    assert len(got) == 6 and got[0].shape == (16, 24, 3)
    assert abs(int(got[3].mean()) - 60) <= 3


def test_a_failed_png_write_names_the_file(tmp_path, monkeypatch):
    """--output on a full or read-only disk: imageio's error carries no file name."""
    import errno

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(imageio, "imwrite", full)
    with pytest.raises(OSError) as e:
        write_png(str(tmp_path / "out.png"), np.zeros((4, 4, 3), np.float32))
    assert e.value.filename == str(tmp_path / "out.png") and e.value.errno == errno.ENOSPC
