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


def test_a_video_cut_short_leaves_the_earlier_one_and_no_partial_file(tmp_path):
    """Ctrl-C in the middle of a video: the complete video written before is kept as it was,
    and no shorter video (nor its partial file) is left under any name."""
    from core.media import VideoWriter
    path = str(tmp_path / "fine_rgb.mp4")
    write_video(path, [np.full((16, 24, 3), 200, np.uint8)] * 5, fps=10)
    before = open(path, "rb").read()
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(path, 10) as video:
            video.append(np.zeros((16, 24, 3), np.uint8))
            video.append(np.zeros((16, 24, 3), np.uint8))
            raise KeyboardInterrupt
    assert open(path, "rb").read() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fine_rgb.mp4"]


def test_a_video_appears_under_its_name_only_when_whole(tmp_path):
    from core.media import VideoWriter
    path = tmp_path / "v.mp4"
    with VideoWriter(str(path), 10) as video:
        for i in range(3):
            video.append(np.full((16, 24, 3), 50 * i, np.uint8))
            assert not path.exists()  # while frames are coming, only the partial file is there
    assert len([f for f in imageio.get_reader(str(path))]) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]


def test_a_video_without_frames_is_an_error_and_leaves_nothing(tmp_path):
    from core.media import VideoWriter
    with pytest.raises(ValueError, match="no frames"):
        with VideoWriter(str(tmp_path / "empty.mp4"), 10):
            pass
    assert list(tmp_path.iterdir()) == []
