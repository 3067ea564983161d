"""bench/compare_frames.py: reference frames (the former layout) against a new render folder."""
import os
import sys

import imageio.v2 as imageio
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import compare_frames  # noqa: E402


def _setup(tmp_path, noise):
    rng = np.random.default_rng(0)
    ref, new = tmp_path / "ref" / "run", tmp_path / "new"
    new.mkdir(parents=True)
    (new / "styles.txt").write_text("00000 la_muse.jpg\n00001 sketch.png\n")
    for k, style in enumerate(("la_muse", "sketch")):
        (ref / style).mkdir(parents=True)
        for i in (0, 30):
            img = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
            imageio.imwrite(ref / style / f"{i:03d}_fine.png", img)
            out = np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)
            imageio.imwrite(new / f"style_{k:05d}_fine_{i:05d}.png", out)
    return str(tmp_path / "ref"), str(new)


def test_identical_frames_pass_and_a_shift_of_three_levels_is_reported(tmp_path, capsys):
    ref, new = _setup(tmp_path, 0)
    assert compare_frames.main(["--ref", ref, "--new", new]) == 0
    assert "4 frames, worst inf dB" in capsys.readouterr().out
    ref, new = _setup(tmp_path / "b", 3)  # every pixel 3/255 off (clipped at the ends): ~38.6 dB
    assert compare_frames.main(["--ref", ref, "--new", new]) == 1
    out = capsys.readouterr().out
    assert "NOT met" in out and "sketch frame 30: 3" in out


def test_a_missing_frame_fails(tmp_path, capsys):
    ref, new = _setup(tmp_path, 0)
    os.remove(os.path.join(new, "style_00001_fine_00030.png"))
    assert compare_frames.main(["--ref", ref, "--new", new]) == 1
    assert "sketch frame 30: missing" in capsys.readouterr().out


def test_the_psnr_formula():
    a = np.zeros((4, 4, 3), np.uint8)
    b = np.full((4, 4, 3), 255, np.uint8)
    assert compare_frames.psnr(a, b) == 0.0
    assert compare_frames.psnr(a, a) == float("inf")
