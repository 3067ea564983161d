"""pipeline/targets.py: stylized targets per style, cached and rebuilt when their inputs change.

The encoder and decoder are stand-ins (identity on RGB), so a target is AdaIN applied to the
colour channels directly: an independent NumPy reference gives the expected pixels.
"""
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.targets import load_or_make_targets

V, H, W = 3, 10, 12


class IdentityEncoder:
    """'Features' are the RGB channels themselves; counts the images it encodes."""

    def __init__(self):
        self.calls = 0

    def encode(self, x):
        self.calls += 1
        return x * 1.0


class IdentityDecoder:
    def __init__(self):
        self.calls = 0

    def __call__(self, t):
        self.calls += 1
        return t * 1.0


def adain_rgb_reference(content, style, eps=1e-5):
    """AdaIN on colour channels, pytorch-AdaIN statistics (unbiased variance + eps), as uint8."""
    def stats(img):
        flat = img.reshape(-1, 3).astype(np.float64)
        return flat.mean(0), np.sqrt(flat.var(0, ddof=1) + eps)
    cm, cs = stats(content)
    sm, ss = stats(style)
    out = np.clip((content - cm) / cs * ss + sm, 0, 1)
    return np.floor(255 * out + 0.5).astype(np.uint8)


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(1)
    geo = SimpleNamespace(rgb=rng.uniform(0.2, 0.8, (V, H, W, 3)).astype(np.float32), n_views=V,
                          hwf=(H, W, 10.0))
    styles = [("la_muse.jpg", rng.uniform(0, 1, (7, 9, 3)).astype(np.float32)),
              ("sketch.png", (0.3 + 0.1 * rng.uniform(0, 1, (8, 8, 3))).astype(np.float32))]
    expdir = str(tmp_path)
    os.makedirs(os.path.join(expdir, "geometry"))
    with open(os.path.join(expdir, "geometry", "meta.json"), "w") as f:
        f.write('{"nerf_step": 10}')
    with open(os.path.join(expdir, "decoder.pkl"), "wb") as f:
        f.write(b"decoder v1")
    args = SimpleNamespace(style_size=32, target_factor=1, target_propagation=False, propagation_thresh=0.2,
                           propagation_colour_thresh=0.0, propagation_edge_thresh=0.0,
                           propagation_resample="chained", propagation_interp="cubic", style_patch_weight=0.0,
                           style_patch_ref="target")
    return args, geo, styles, expdir


def make(setup):
    args, geo, styles, expdir = setup
    enc, dec = IdentityEncoder(), IdentityDecoder()
    out = load_or_make_targets(args, geo, enc, dec, styles, expdir, log=lambda *_: None)
    return out, dec.calls


def test_targets_are_adain_of_each_view_with_each_style(setup):
    _, geo, styles, expdir = setup
    targets, calls = make(setup)
    assert calls == 2 * V
    assert sorted(f for f in os.listdir(os.path.join(expdir, "targets")) if f.endswith(".npy")) == \
        ["000_la_muse.npy", "001_sketch.npy"]
    assert len(targets) == 2
    for t, (_, style) in zip(targets, styles):
        assert t.shape == (V, H, W, 3) and t.dtype == np.uint8
        for v in range(V):
            ref = adain_rgb_reference(geo.rgb[v], style)
            assert np.abs(t[v].astype(int) - ref).max() <= 1
    # the two styles give clearly different targets (the low-contrast one has a smaller spread)
    assert np.asarray(targets[1]).std() < 0.5 * np.asarray(targets[0]).std()


def test_second_call_reloads_without_stylizing(setup):
    first, _ = make(setup)
    first = [np.array(t) for t in first]
    again, calls = make(setup)
    assert calls == 0
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_cache_is_per_style(setup):
    _, _, _, expdir = setup
    make(setup)
    os.remove(os.path.join(expdir, "targets", "001_sketch.npy"))
    _, calls = make(setup)
    assert calls == V  # only the missing style is stylized again


def _stylized_again(setup, change):
    make(setup)
    change()
    _, calls = make(setup)
    return calls


def test_new_decoder_of_another_size_invalidates(setup):
    path = os.path.join(setup[3], "decoder.pkl")

    def change():
        with open(path, "wb") as f:
            f.write(b"decoder v2, longer")
    assert _stylized_again(setup, change) == 2 * V


def test_new_decoder_mtime_invalidates(setup):
    path = os.path.join(setup[3], "decoder.pkl")

    def change():
        st = os.stat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert _stylized_again(setup, change) == 2 * V


def test_decoder_rewritten_within_the_same_second_invalidates(setup):
    """A re-run fine-tune writes a decoder.pkl of the same size: the mtime must tell them apart."""
    path = os.path.join(setup[3], "decoder.pkl")

    def change():
        time.sleep(0.05)
        with open(path, "wb") as f:
            f.write(b"decoder v2")  # same size as v1
    assert _stylized_again(setup, change) == 2 * V


def test_new_geometry_invalidates(setup):
    path = os.path.join(setup[3], "geometry", "meta.json")

    def change():
        with open(path, "w") as f:
            f.write('{"nerf_step": 200}')
    assert _stylized_again(setup, change) == 2 * V


def test_rerun_leaves_target_files_untouched(setup):
    """Re-running with identical inputs leaves the target files untouched (same mtimes)."""
    _, _, _, expdir = setup
    make(setup)
    folder = os.path.join(expdir, "targets")
    before = {f: os.stat(os.path.join(folder, f)).st_mtime_ns for f in os.listdir(folder)}
    make(setup)
    after = {f: os.stat(os.path.join(folder, f)).st_mtime_ns for f in os.listdir(folder)}
    assert before == after


def test_a_damaged_target_file_is_made_again_with_a_warning(setup):
    _, _, _, expdir = setup
    first, _ = make(setup)
    first = [np.array(t) for t in first]
    folder = os.path.join(expdir, "targets")
    path = os.path.join(folder, "001_sketch.npy")
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])  # cut short by a full disk
    with open(os.path.join(folder, "000_la_muse.npy.tmp.npy"), "wb") as f:
        f.write(b"partial")  # a kill mid-write
    args, geo, styles, _ = setup
    logs, dec = [], IdentityDecoder()
    again = load_or_make_targets(args, geo, IdentityEncoder(), dec, styles, expdir, log=logs.append)
    assert dec.calls == V  # only the damaged style
    assert len(logs) == 1 and logs[0].startswith("warning:") and path in logs[0]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not [f for f in os.listdir(folder) if ".tmp" in f]


def test_target_factor_stylizes_the_area_averaged_view_at_the_smaller_size(setup):
    """--target_factor 2: each target is AdaIN of the view's 2x2 block means (NumPy reference)."""
    args, geo, styles, expdir = setup
    args.target_factor = 2
    targets, calls = make(setup)
    assert calls == 2 * V
    for t, (_, style) in zip(targets, styles):
        assert t.shape == (V, H // 2, W // 2, 3)
        for v in range(V):
            small = geo.rgb[v].reshape(H // 2, 2, W // 2, 2, 3).mean(axis=(1, 3))
            assert np.abs(t[v].astype(int) - adain_rgb_reference(small, style)).max() <= 1


def test_another_target_factor_makes_the_targets_again(setup):
    args = setup[0]

    def change():
        args.target_factor = 2
    assert _stylized_again(setup, change) == 2 * V


def _plane_geometry(geo, factor=1):
    """Cameras 1 unit apart over the plane z = -5, the fixture's views' size: view pixels shift
    by focal / 5 = 2 columns from one camera to the next."""
    from tests.test_target_propagation import camera, plane_points
    geo.c2ws = np.stack([camera(float(x)) for x in range(V)])
    geo.points = np.stack([plane_points(c, h=H, w=W, f=geo.hwf[2]) for c in geo.c2ws])


def test_target_propagation_makes_the_per_view_targets_consistent(setup):
    """--target_propagation: the per-view targets of the run without it, through propagate()."""
    from pipeline.target_propagation import propagate
    args, geo, styles, expdir = setup
    _plane_geometry(geo)
    own, _ = make(setup)
    own = [np.array(t) for t in own]
    args.target_propagation = True
    logs = []
    out = load_or_make_targets(args, geo, IdentityEncoder(), IdentityDecoder(), styles, expdir, log=logs.append)
    for t, o in zip(out, own):
        expected, taken = propagate(o, geo.points, geo.c2ws, geo.hwf[2], args.propagation_thresh)
        np.testing.assert_array_equal(t, expected)
        assert not np.array_equal(t, o)
        # the central camera keeps its own target; the others take from it
        np.testing.assert_array_equal(t[1], o[1])
        np.testing.assert_array_equal(t[2][:, :W - 2], o[1][:, 2:])
    assert any("taken from earlier views" in line for line in logs)


def test_view_reference_keeps_each_views_own_stylization_beside_the_propagated_targets(setup):
    """--style_patch_ref view: the per-view targets are saved too (as the run without propagation
    makes them), a cache without them is made again, and load_view_targets reads them."""
    from pipeline.targets import is_current, load_view_targets
    args, geo, styles, expdir = setup
    _plane_geometry(geo)
    own, _ = make(setup)
    own = [np.array(t) for t in own]
    names = [n for n, _ in styles]
    assert load_view_targets(args, expdir, names) is None  # not asked for
    args.target_propagation = True
    propagated = [np.array(t) for t in load_or_make_targets(args, geo, IdentityEncoder(), IdentityDecoder(), styles,
                                                            expdir, log=lambda *_: None)]
    assert load_view_targets(args, expdir, names) is None and is_current(args, expdir, names)
    args.style_patch_weight, args.style_patch_ref = 0.01, "view"
    assert not is_current(args, expdir, names)  # the propagated targets alone no longer do
    dec = IdentityDecoder()
    again = load_or_make_targets(args, geo, IdentityEncoder(), dec, styles, expdir, log=lambda *_: None)
    assert dec.calls == 2 * V and is_current(args, expdir, names)
    for t, p, o, v in zip(again, propagated, own, load_view_targets(args, expdir, names)):
        np.testing.assert_array_equal(t, p)
        np.testing.assert_array_equal(v, o)
    assert sorted(f for f in os.listdir(os.path.join(expdir, "targets")) if f.endswith(".npy")) == \
        ["000_la_muse.npy", "000_la_muse.view.npy", "001_sketch.npy", "001_sketch.view.npy"]
    args.style_patch_ref = "view_std"  # reads the same files: nothing is made again
    assert is_current(args, expdir, names)
    for v, o in zip(load_view_targets(args, expdir, names), own):
        np.testing.assert_array_equal(v, o)


def test_turning_target_propagation_on_or_its_threshold_makes_the_targets_again(setup):
    args, geo = setup[0], setup[1]
    _plane_geometry(geo)

    def on():
        args.target_propagation = True
    assert _stylized_again(setup, on) == 2 * V

    def other_thresh():
        args.propagation_thresh = 0.1
    assert _stylized_again(setup, other_thresh) == 2 * V

    def colour_test():
        args.propagation_colour_thresh = 0.1
    assert _stylized_again(setup, colour_test) == 2 * V

    def read_once():
        args.propagation_resample = "once"
    assert _stylized_again(setup, read_once) == 2 * V

    def lanczos():
        args.propagation_interp = "lanczos"
    assert _stylized_again(setup, lanczos) == 2 * V


def test_the_colour_test_reads_the_views_photoreal_renders(setup):
    """--propagation_colour_thresh: renders that agree along the plane's 2-column shift, but for
    a patch of view 2 that is brighter: there view 2 keeps its own target; elsewhere it takes the
    central view's, as without the test."""
    args, geo, styles, expdir = setup
    _plane_geometry(geo)
    base = np.random.default_rng(7).uniform(0.2, 0.6, (H, W + 2 * (V - 1), 3)).astype(np.float32)
    geo.rgb = np.stack([base[:, 2 * v:2 * v + W] for v in range(V)])  # view v, column i = view v-1, i+2
    geo.rgb[2][3:6, 3:6] += 0.3  # at least 3 pixels from the edges: the mask's 3x3 opening keeps the rest
    own = [np.array(t) for t in make(setup)[0]]
    args.target_propagation, args.propagation_colour_thresh = True, 0.1
    out = load_or_make_targets(args, geo, IdentityEncoder(), IdentityDecoder(), styles, expdir, log=lambda *_: None)
    for t, o in zip(out, own):
        np.testing.assert_array_equal(t[2][3:6, 3:6], o[2][3:6, 3:6])
        keep = np.ones((H, W - 2), bool)
        keep[3:6, 3:6] = False
        np.testing.assert_array_equal(t[2][:, :W - 2][keep], o[1][:, 2:][keep])


def test_saved_targets_for_a_render(tmp_path):
    """A render's 2D-target PNGs: the saved array memory-mapped; a missing file gives None; a
    file cut short gives None with one warning naming it, and stays where it is."""
    from pipeline.targets import saved_targets
    arr = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    path = str(tmp_path / "000_la_muse.npy")
    np.save(path, arr)
    logs = []
    np.testing.assert_array_equal(saved_targets(path, logs.append), arr)
    assert saved_targets(str(tmp_path / "none.npy"), logs.append) is None and logs == []
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])
    assert saved_targets(path, logs.append) is None
    assert len(logs) == 1 and logs[0].startswith(f"warning: damaged stylized targets {path} (") and os.path.exists(path)

