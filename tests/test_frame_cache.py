"""evaluation/frame_cache.py: rendered frames kept per frame, reused under the same key only."""
import errno
import os

import numpy as np

import evaluation.frame_cache as frame_cache
from evaluation.frame_cache import FrameCache


def _frame(seed, H=5, W=7):
    rng = np.random.default_rng(seed)
    return (rng.random((H, W, 3), dtype=np.float32), rng.random((H, W), dtype=np.float32),
            rng.random((H, W), dtype=np.float32))


def test_frames_come_back_exactly_under_the_same_key(tmp_path):
    folder, lines = str(tmp_path / "frames"), []
    cache = FrameCache(folder, {"nerf": 1}, lines.append)
    assert cache.get("photo", 0, 5, 7) is None
    rgb, depth, acc = _frame(0)
    cache.put("photo", 0, rgb, depth, acc)
    cache.put("style_la muse.jpg", 3, *_frame(1))
    again = FrameCache(folder, {"nerf": 1}, lines.append)
    got = again.get("photo", 0, 5, 7)
    np.testing.assert_array_equal(got[0], rgb)  # float32 kept bit for bit
    np.testing.assert_array_equal(got[1], depth)
    np.testing.assert_array_equal(got[2], acc)
    np.testing.assert_array_equal(again.get("style_la muse.jpg", 3, 5, 7)[0], _frame(1)[0])
    assert again.get("photo", 1, 5, 7) is None and again.reused == 2
    # another size is a damaged frame: warned, removed, rendered again
    assert again.get("photo", 0, 6, 7) is None and any("damaged evaluation frame" in ln for ln in lines)
    assert not os.path.exists(os.path.join(folder, "photo_0000.npz"))


def test_frames_put_by_this_run_are_there_but_not_counted_as_reused(tmp_path):
    """The stylized paths are rendered ahead, all styles together, and read back per style: only
    frames an earlier (cut) run left count as reused."""
    folder = str(tmp_path / "frames")
    cache = FrameCache(folder, {"nerf": 1}, lambda line: None)
    assert not cache.has("style_a.jpg", 0)
    cache.put("style_a.jpg", 0, *_frame(2))
    assert cache.has("style_a.jpg", 0) and not cache.has("style_a.jpg", 1)
    np.testing.assert_array_equal(cache.get("style_a.jpg", 0, 5, 7)[0], _frame(2)[0])
    assert cache.reused == 0
    again = FrameCache(folder, {"nerf": 1}, lambda line: None)
    assert again.get("style_a.jpg", 0, 5, 7) is not None and again.reused == 1


def test_a_changed_key_clears_the_frames(tmp_path):
    folder, lines = str(tmp_path / "frames"), []
    FrameCache(folder, {"nerf": 1, "style": ["style_100.pkl", "5:7"]}, lines.append).put("photo", 0, *_frame(0))
    cache = FrameCache(folder, {"nerf": 1, "style": ["style_200.pkl", "5:9"]}, lines.append)
    assert cache.get("photo", 0, 5, 7) is None
    assert [f for f in os.listdir(folder) if f.endswith(".npz")] == []
    assert any("stale (style changed" in ln for ln in lines)


def test_a_partial_frame_is_removed_and_remove_clears_all(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "photo_0001.tmp.npz").write_bytes(b"cut")
    cache = FrameCache(str(folder), {"nerf": 1}, print)
    assert not (folder / "photo_0001.tmp.npz").exists()
    cache.remove()
    assert not folder.exists()


def test_a_frame_that_cannot_be_written_turns_the_cache_off(tmp_path, monkeypatch):
    lines = []
    cache = FrameCache(str(tmp_path / "frames"), {"nerf": 1}, lines.append)

    def full_disk(path, arrays):
        raise OSError(errno.ENOSPC, "No space left on device", path)
    monkeypatch.setattr(frame_cache, "write_arrays", full_disk)
    cache.put("photo", 0, *_frame(0))
    cache.put("photo", 1, *_frame(1))
    assert len(lines) == 1 and "cannot keep the rendered frames" in lines[0] and "ENOSPC" in lines[0]
    assert cache.get("photo", 0, 5, 7) is None and not cache.on


def test_ctrl_c_in_the_block_names_the_frames_kept(tmp_path):
    import pytest
    from core.interrupt import WorkInterrupted
    cache = FrameCache(str(tmp_path / "frames"), {"nerf": 1}, print)
    cache.put("photo", 0, *_frame(0))
    cache.put("photo", 1, *_frame(1))
    with pytest.raises(WorkInterrupted, match=r"the 2 frames rendered so far are kept in .*frames\. Run the same"):
        with cache.kept_on_interrupt():
            raise KeyboardInterrupt
    with cache.kept_on_interrupt():  # other work passes through
        pass


def test_a_nearly_full_disk_turns_the_cache_off_before_writing(tmp_path, monkeypatch):
    import collections
    lines = []
    cache = FrameCache(str(tmp_path / "frames"), {"nerf": 1}, lines.append)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(frame_cache.shutil, "disk_usage", lambda p: usage(10 * 2**30, 0, frame_cache.KEEP_FREE + 100))
    cache.put("photo", 0, *_frame(0))  # 5x7x5 floats: 700 bytes, more than the 100 left above the reserve
    assert not cache.on and len(lines) == 1 and "GB free" in lines[0]
    assert [f for f in os.listdir(tmp_path / "frames") if f.endswith(".npz")] == []


def test_a_styles_measures_come_back_under_the_same_inputs_and_key_only(tmp_path):
    folder = str(tmp_path / "frames")
    cache = FrameCache(folder, {"nerf": 1}, print)
    measures = {"rows": {"forward": [{"style": "la muse.jpg", "k1_mean": 0.1 + 0.2}]}, "strip": "strip_a.png",
                "lines": ["forward warp: ..."]}
    inputs = {"decoder": "ab12", "ks": (1, 7)}
    assert cache.get_measures("la muse.jpg", inputs) is None
    cache.put_measures("la muse.jpg", inputs, measures)
    again = FrameCache(folder, {"nerf": 1}, print)
    assert again.get_measures("la muse.jpg", inputs) == measures  # floats kept exactly
    assert again.get_measures("la muse.jpg", dict(inputs, decoder="cd34")) is None  # other 2D networks
    assert again.get_measures("sketch.png", inputs) is None
    # the frames' key changes (another NeRF): the measures go with the frames
    FrameCache(folder, {"nerf": 2}, print)
    assert FrameCache(folder, {"nerf": 2}, print).get_measures("la muse.jpg", inputs) is None
    assert not [n for n in os.listdir(folder) if n.startswith("measures_")]
