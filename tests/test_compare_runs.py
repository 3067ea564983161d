"""bench/compare_runs.py: two experiment folders of two code versions, file by file."""
import os
import pickle
import sys

import imageio.v2 as imageio
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import compare_runs  # noqa: E402


def _experiment(root, name, weight_delta=0.0, frame_shift=0, extra_key=False):
    """An experiment as the two versions write it: a checkpoint, a geometry and a target cache,
    and the stylized path in the old layout (ref) or the new one (new)."""
    rng = np.random.default_rng(0)
    exp = root / name
    (exp / "geometry").mkdir(parents=True)
    (exp / "targets").mkdir()
    ckpt = {"step": 60, "model": {"w": rng.normal(size=(3, 4)).astype(np.float32) + weight_delta}}
    if extra_key:
        ckpt["width"] = 16  # a field only the newer version writes
    with open(exp / "style_000060.pkl", "wb") as f:
        pickle.dump(ckpt, f)
    np.savez(exp / "geometry" / "view_000.npz", depth=rng.random((4, 5)))
    np.save(exp / "targets" / "000_la_muse.npy", rng.random((2, 4, 5, 3)))
    frames = [rng.integers(0, 256, (6, 8, 3)).astype(np.uint8) for _ in range(2)]
    if name == "ref":
        out = exp / "render_valid_style_000060" / "la_muse"
        out.mkdir(parents=True)
        for i, img in enumerate(frames):
            imageio.imwrite(out / f"{i:03d}_fine.png", img)
    else:
        out = exp / "render_valid_60"
        out.mkdir()
        (out / "styles.txt").write_text("00000 la_muse.jpg\n")
        for i, img in enumerate(frames):
            img = np.clip(img.astype(int) + frame_shift, 0, 255).astype(np.uint8)
            imageio.imwrite(out / f"style_00000_fine_{i:05d}.png", img)
    return str(exp)


def test_identical_runs_pass_with_every_file_kind_compared(tmp_path, capsys):
    ref, new = _experiment(tmp_path, "ref"), _experiment(tmp_path, "new", extra_key=True)
    assert compare_runs.main([ref, new]) == 0
    out = capsys.readouterr().out
    # one checkpoint, two caches, two frames matched across the two layouts
    assert "5 files compared (2 frames, worst inf dB): all within the limits" in out
    assert "in one only or shaped apart: /width" in out  # listed, not failed


def test_a_changed_weight_fails_unless_the_tolerance_covers_it(tmp_path, capsys):
    ref, new = _experiment(tmp_path, "ref"), _experiment(tmp_path, "new", weight_delta=1e-3)
    assert compare_runs.main([ref, new]) == 1
    out = capsys.readouterr().out
    assert "style_000060.pkl: max |diff| 0.001  <- NOT within the limit" in out
    assert compare_runs.main([ref, new, "--atol", "inf"]) == 0


def test_frames_under_the_psnr_limit_fail(tmp_path, capsys):
    ref, new = _experiment(tmp_path, "ref"), _experiment(tmp_path, "new", frame_shift=3)
    assert compare_runs.main([ref, new]) == 1  # 3/255 off: about 38.6 dB
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("frame")]
    assert len(rows) == 2 and all("NOT within the limit" in r for r in rows)
    assert compare_runs.main([ref, new, "--min_psnr", "35"]) == 0


def test_nothing_comparable_is_a_failure(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert compare_runs.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert compare_runs.main([str(tmp_path / "a"), str(tmp_path / "missing")]) == 2
