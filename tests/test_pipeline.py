"""End to end on a tiny real scene: fern at 1/64 of full size (63x47), six views.

run_stylenerf.py's stages run in order and resume; stylized renders and videos are
written; evaluate.py writes its report; bad inputs give one clear line.
"""
import os
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

import evaluate
import run_stylenerf
from core.config import parse_args
from pipeline import nerf_stage
from pipeline.stages import load_scene
from render.options import RenderOptions

N_VIEWS = 6


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory, fern_dir):
    """fern's first six views at factor 64 (images_64/, made with OpenCV from images_8/)."""
    root = tmp_path_factory.mktemp("fern_tiny")
    pb = np.load(os.path.join(fern_dir, "poses_bounds.npy"))[:N_VIEWS]
    np.save(root / "poses_bounds.npy", pb)
    H, W = int(round(pb[0, 4] / 64)), int(round(pb[0, 9] / 64))
    os.makedirs(root / "images_64")
    src = sorted(os.listdir(os.path.join(fern_dir, "images_8")))[:N_VIEWS]
    for name in src:
        img = cv2.imread(os.path.join(fern_dir, "images_8", name))
        cv2.imwrite(str(root / "images_64" / name), cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA))
    return str(root)


@pytest.fixture(scope="module")
def tiny_styles(tmp_path_factory, styles_dir):
    root = tmp_path_factory.mktemp("styles")
    for name in ("la_muse.jpg", "sketch.png"):
        img = cv2.imread(os.path.join(styles_dir, name))
        cv2.imwrite(str(root / name), cv2.resize(img, (48, 40), interpolation=cv2.INTER_AREA))
    return str(root)


def tiny_argv(scene, styles, basedir, vgg, decoder, **over):
    opts = dict(datadir=scene, basedir=basedir, expname="tiny", styledir=styles, vae_style_dir=styles,
                vgg_pth_path=vgg, decoder_pth_path=decoder, vae_pth_path=os.path.join(basedir, "none.pkl"),
                factor=64, netdepth=5, netwidth=32, netdepth_fine=5, netwidth_fine=32, style_D=4,
                embed_freq_coor=4, embed_freq_dir=2, N_samples=8, N_samples_fine=8, batch_size=256,
                batch_size_style=256, chunk=4096, origin_step=30, i_weights=10, i_print=5, finetune_decoder_steps=2,
                i_weights_decoder=1, finetune_size=32, style_size=32, vae_steps=3, vae_w=64,
                total_step=40, gen_factor=1, valid_factor=2, lrate=5e-3,
                hash_log2_size=12, hash_max_res=64,  # a small hash grid where a config asks for one
                style_patch=8)  # and a texture window that fits the tiny targets
    opts.update(over)
    argv = ["--use_viewdir", "--device", "cpu", "--matmul", "fp32"]  # exact matmuls also on a GPU run
    for k, v in opts.items():
        argv += [f"--{k}", str(v)]
    return argv


@pytest.fixture(scope="module")
def trained(tiny_scene, tiny_styles, tmp_path_factory, vgg_relu3_path, decoder_relu3_path):
    """A tiny experiment trained through all stages, first the NeRF to step 20, then resumed."""
    base = str(tmp_path_factory.mktemp("logs"))
    argv = tiny_argv(tiny_scene, tiny_styles, base, vgg_relu3_path, decoder_relu3_path)
    assert run_stylenerf.main(argv + ["--origin_step", "20", "--total_step", "20"]) == 0
    assert run_stylenerf.main(argv) == 0
    return argv, os.path.join(base, "tiny")


def test_nerf_training_reduces_the_loss(tiny_scene, tiny_styles, tmp_path, vgg_relu3_path, decoder_relu3_path):
    import jittor as jt
    from dataset.rays import PixelRays
    from render.renderer import render_rays
    args = parse_args(tiny_argv(tiny_scene, tiny_styles, str(tmp_path), vgg_relu3_path, decoder_relu3_path,
                                origin_step=60, i_weights=1000))
    scene = load_scene(args)
    batch = PixelRays.from_scene(scene, scene.i_train).sample(512, np.random.default_rng(1))
    opts = RenderOptions.from_args(args, scene, "eval")

    def mse(system):
        with jt.no_grad():
            out = render_rays(jt.array(batch["rays_o"]), jt.array(batch["rays_d"]), jt.array(batch["viewdirs"]),
                              *system.fields(), opts=opts)
        return float(((out["fine"]["rgb"] - jt.array(batch["rgb"])) ** 2).mean().item())

    jt.set_global_seed(0)
    before = mse(nerf_stage.NeRFSystem(args))
    jt.set_global_seed(0)
    after = mse(nerf_stage.train_nerf(args, scene, str(tmp_path / "exp"), log=lambda *_: None))
    assert after < 0.7 * before, (before, after)


def test_stages_resume_and_write_their_files(trained):
    _, exp = trained
    files = set(os.listdir(exp))
    # NeRF checkpoints: the step-20 run was resumed up to 30 (keep 3: 10, 20, 30)
    assert {"nerf_000020.pkl", "nerf_000030.pkl"} <= files
    assert {"decoder.pkl", "vae.pkl", "style_000040.pkl"} <= files
    assert len([f for f in os.listdir(os.path.join(exp, "geometry")) if f.startswith("view_")]) == N_VIEWS
    targets = sorted(f for f in os.listdir(os.path.join(exp, "targets")) if f.endswith(".npy"))
    assert targets == ["000_la_muse.npy", "001_sketch.npy"]
    t = np.load(os.path.join(exp, "targets", targets[0]))
    assert t.shape == (N_VIEWS, 47, 63, 3) and t.dtype == np.uint8 and t.std() > 1
    with np.load(os.path.join(exp, "geometry", "view_000.npz")) as z:
        assert z["points"].shape == (47, 63, 3) and np.isfinite(z["points"]).all()


def test_rerun_is_a_no_op(trained):
    argv, exp = trained
    before = {f: os.path.getmtime(os.path.join(exp, f)) for f in os.listdir(exp) if f.endswith(".pkl")}
    assert run_stylenerf.main(argv) == 0
    after = {f: os.path.getmtime(os.path.join(exp, f)) for f in os.listdir(exp) if f.endswith(".pkl")}
    assert before == after


def _frames(path):
    import imageio.v2 as imageio
    return [f for f in imageio.get_reader(path)]


def test_a_damaged_target_file_leaves_out_its_2d_pngs_with_a_warning(trained, capsys):
    """--render_train_style after a finished style stage whose saved targets were cut short: the
    render goes on (exit 0) without that style's 2D PNGs, and one warning names the file (it used
    to end in 'error: mmap length is greater than file size', naming nothing)."""
    argv, exp = trained
    path = os.path.join(exp, "targets", "001_sketch.npy")
    data = open(path, "rb").read()
    root = os.path.join(exp, "render_train_40")
    try:
        open(path, "wb").write(data[:len(data) // 2])
        for n in (os.listdir(root) if os.path.isdir(root) else []):
            if n.startswith("style_00001_2d_"):
                os.remove(os.path.join(root, n))
        assert run_stylenerf.main(argv + ["--render_train_style", "--style", "sketch"]) == 0
        out = capsys.readouterr().out
        assert f"warning: damaged stylized targets {path} (" in out
        names = set(os.listdir(root))
        assert "style_00001_fine_00000.png" in names and not any(n.startswith("style_00001_2d_") for n in names)
    finally:
        open(path, "wb").write(data)


def test_stylized_rendering_writes_the_originals_files(trained):
    import imageio.v2 as imageio
    argv, exp = trained
    assert run_stylenerf.main(argv + ["--render_train_style", "--style", "sketch"]) == 0
    root = os.path.join(exp, "render_train_40")  # the style checkpoint's step, as the original
    names = set(os.listdir(root))
    kinds = ("fine", "coarse", "fine_depth", "coarse_depth")
    assert {f"style_00001_{k}_{i:05d}.png" for i in range(N_VIEWS) for k in kinds + ("2d",)} <= names
    assert not any(n.startswith("style_00000_") for n in names)  # only the style asked for
    assert open(os.path.join(root, "styles.txt")).read() == "00000 la_muse.jpg\n00001 sketch.png\n"
    # the 2D target is the stage-4 target of that view
    target = np.load(os.path.join(exp, "targets", "001_sketch.npy"))[2]
    np.testing.assert_array_equal(imageio.imread(os.path.join(root, "style_00001_2d_00002.png")), target)

    assert run_stylenerf.main(argv + ["--render_valid_style", "--style", "0"]) == 0
    root = os.path.join(exp, "render_valid_40")
    n = N_VIEWS * 2  # valid_factor 2, closed loop
    names = set(os.listdir(root))
    assert {f"style_00000_{k}_{i:05d}.png" for i in range(n) for k in kinds} <= names
    assert {"fine_rgb.mp4", "coarse_rgb.mp4", "fine_depth.mp4", "coarse_depth.mp4", "la_muse"} <= names
    assert {"fine_rgb.mp4", "coarse_rgb.mp4"} <= set(os.listdir(os.path.join(root, "la_muse")))
    fine = imageio.imread(os.path.join(root, "style_00000_fine_00000.png")).astype(float)
    coarse = imageio.imread(os.path.join(root, "style_00000_coarse_00000.png")).astype(float)
    video = _frames(os.path.join(root, "fine_rgb.mp4"))
    assert len(video) == n and len(_frames(os.path.join(root, "coarse_depth.mp4"))) == n
    first = video[0][:fine.shape[0], :fine.shape[1]].astype(float)
    # the fine video holds the fine frames (the original's held the coarse ones)
    assert np.abs(first - fine).mean() < np.abs(first - coarse).mean()
    assert np.abs(first - fine).mean() < 8  # H.264 at quality 8

    # several styles in one pass (shared geometry, train and valid): the same frames as one by one
    frames = {mode: imageio.imread(os.path.join(exp, f"render_{mode}_40", f"style_{k:05d}_fine_00001.png"))
              for mode, k in (("train", 1), ("valid", 0))}
    for flag, mode in (("--render_train_style", "train"), ("--render_valid_style", "valid")):
        assert run_stylenerf.main(argv + [flag, "--style", "la_muse,sketch"]) == 0
        root = os.path.join(exp, f"render_{mode}_40")
        k = 1 if mode == "train" else 0
        together = imageio.imread(os.path.join(root, f"style_{k:05d}_fine_00001.png"))
        assert np.abs(together.astype(int) - frames[mode]).max() <= 1  # 8-bit rounding at most
        assert os.path.exists(os.path.join(root, f"style_{1 - k:05d}_coarse_depth_00001.png"))
    # the videos run through the styles in turn; each style's own video in its folder
    root = os.path.join(exp, "render_valid_40")
    video = _frames(os.path.join(root, "fine_rgb.mp4"))
    assert len(video) == 2 * n and len(_frames(os.path.join(root, "fine_depth.mp4"))) == 2 * n
    sketch = imageio.imread(os.path.join(root, "style_00001_fine_00000.png")).astype(float)
    la_muse = imageio.imread(os.path.join(root, "style_00000_fine_00000.png")).astype(float)
    frame = video[n][:sketch.shape[0], :sketch.shape[1]].astype(float)
    assert np.abs(frame - sketch).mean() < np.abs(frame - la_muse).mean()
    assert len(_frames(os.path.join(root, "sketch", "fine_rgb.mp4"))) == n


def test_style_interpolation_video_starts_and_ends_in_the_two_styles(trained):
    """--style_interp: frame 0 is la_muse's novel view, the last frame sketch's, as rendered one
    style at a time; the sequence has the path's frames and the four videos."""
    import imageio.v2 as imageio
    argv, exp = trained
    assert run_stylenerf.main(argv + ["--render_valid_style", "--style", "la_muse,sketch"]) == 0
    assert run_stylenerf.main(argv + ["--render_valid_style", "--style", "la_muse,sketch", "--style_interp"]) == 0
    root = os.path.join(exp, "render_valid_40")
    out = os.path.join(root, "la_muse_to_sketch")
    names = set(os.listdir(out))
    n = N_VIEWS * 2
    assert {"fine_rgb.mp4", "coarse_rgb.mp4", "fine_depth.mp4", "coarse_depth.mp4"} <= names
    assert len([f for f in names if f.startswith("fine_0")]) == n
    for frame, style, other in ((0, 0, 1), (n - 1, 1, 0)):
        got = imageio.imread(os.path.join(out, f"fine_{frame:05d}.png")).astype(int)
        want = imageio.imread(os.path.join(root, f"style_{style:05d}_fine_{frame:05d}.png")).astype(int)
        not_want = imageio.imread(os.path.join(root, f"style_{other:05d}_fine_{frame:05d}.png")).astype(int)
        assert np.abs(got - want).max() <= 1  # 8-bit rounding at most
        assert np.abs(got - want).mean() < np.abs(got - not_want).mean()  # the styles do differ


def test_fast_renders_match_exact_ones(trained, monkeypatch, capsys):
    """--render_mode fast (the default for the novel-view and stylized renders) against exact: the
    same frames within 8-bit rounding; the NeRF's occupancy grid is built once, next to its
    checkpoint, and reused.  This 30-step NeRF fills its grid, which by default keeps the exact
    renderer (render.fast.FULL): the fast one is forced here."""
    import imageio.v2 as imageio
    argv, exp = trained
    assert run_stylenerf.main(argv + ["--render_valid_style", "--style", "0", "--render_mode", "fast"]) == 0
    assert "nothing to skip, the exact renderer renders" in capsys.readouterr().out
    monkeypatch.setattr("render.fast.FULL", 1.01)
    kinds = ("fine", "coarse", "fine_depth")
    runs = (("--render_valid_style", "render_valid_40", "style_00000_"), ("--render_valid", "render_valid_30", ""))
    frames = {}
    for mode in ("exact", "fast"):
        for flag, folder, prefix in runs:
            assert run_stylenerf.main(argv + [flag, "--style", "0", "--render_mode", mode]) == 0
            frames[mode, flag] = [imageio.imread(os.path.join(exp, folder, f"{prefix}{k}_{i:05d}.png")).astype(int)
                                  for i in (0, 3) for k in kinds]
    grid = os.path.join(exp, "occupancy_000030.npz")
    built = os.path.getmtime(grid)
    for flag, _, _ in runs:
        assert len(frames["exact", flag]) == len(frames["fast", flag]) == 6
        for a, b in zip(frames["exact", flag], frames["fast", flag]):
            assert np.abs(a - b).max() <= 1, flag  # 8-bit rounding at most
    assert run_stylenerf.main(argv + ["--render_valid_style", "--style", "0", "--render_mode", "fast"]) == 0
    assert os.path.getmtime(grid) == built
    assert "nothing to skip" not in capsys.readouterr().out


def test_style_interpolation_needs_two_styles_and_the_video_mode(trained, capsys):
    argv, _ = trained
    assert run_stylenerf.main(argv + ["--render_valid_style", "--style", "la_muse", "--style_interp"]) == 2
    assert "--style_interp needs --render_valid_style and --style with two or more" in capsys.readouterr().err
    assert run_stylenerf.main(argv + ["--render_train_style", "--style", "0,1", "--style_interp"]) == 2


def test_photoreal_rendering_writes_the_originals_files_and_heldout_psnr(trained, capsys):
    import imageio.v2 as imageio
    argv, exp = trained
    assert run_stylenerf.main(argv + ["--render_train"]) == 0
    out = os.path.join(exp, "render_train_30")  # the NeRF checkpoint's step
    names = set(os.listdir(out))
    kinds = ("fine", "coarse", "fine_depth", "coarse_depth", "gt")
    assert {f"{k}_{i:05d}.png" for k in kinds for i in range(N_VIEWS)} | {"psnr.txt"} <= names
    psnr_txt = open(os.path.join(out, "psnr.txt")).read()
    assert "held-out PSNR" in psnr_txt and "held-out PSNR" in capsys.readouterr().out
    # the reported PSNR is that of the written fine render against the written ground truth
    rgb = imageio.imread(os.path.join(out, "fine_00000.png")).astype(np.float64) / 255
    gt = imageio.imread(os.path.join(out, "gt_00000.png")).astype(np.float64) / 255
    reported = float([line for line in psnr_txt.splitlines() if line.startswith("view 0:")][0].split()[-1])
    assert abs(reported - (-10 * np.log10(np.mean((rgb - gt) ** 2)))) < 0.3  # 8-bit rounding
    # gt is the photo (view 0, held out: image order)
    scene = load_scene(parse_args(argv))
    np.testing.assert_allclose(gt, scene.images[0], atol=0.6 / 255)
    assert run_stylenerf.main(argv + ["--render_valid"]) == 0
    out = os.path.join(exp, "render_valid_30")
    names = set(os.listdir(out))
    assert {"fine_rgb.mp4", "coarse_rgb.mp4", "fine_depth.mp4", "coarse_depth.mp4", "fine_00000.png",
            "coarse_depth_00011.png"} <= names
    fine = imageio.imread(os.path.join(out, "fine_00003.png")).astype(float)
    coarse = imageio.imread(os.path.join(out, "coarse_00003.png")).astype(float)
    frame = _frames(os.path.join(out, "fine_rgb.mp4"))[3][:fine.shape[0], :fine.shape[1]].astype(float)
    assert np.abs(frame - fine).mean() < np.abs(frame - coarse).mean()


def test_evaluate_writes_a_report(trained):
    argv, exp = trained
    assert evaluate.main(argv + ["--eval_factor", "1", "--eval_k_long", "3"]) == 0
    report = open(os.path.join(exp, "eval", "report.md")).read()
    assert "stylized NeRF" in report and "per-frame AdaIN" in report and "held-out" in report
    assert os.path.getsize(os.path.join(exp, "eval", "consistency.png")) > 1000
    _check_style_strength(argv, os.path.join(exp, "eval"), report)


@pytest.mark.parametrize("render", [[], ["--style_render_samples", "1", "--style_point", "surface"]],
                         ids=["every_sample", "one_point"])
def test_styles_rendered_together_give_the_figures_of_one_style_at_a_time(trained, monkeypatch, render):
    """evaluate.py renders the stylized paths of several styles over one geometry a frame, or
    colours one-point styles at the photoreal path's surface (report.prerender_styles); its
    figures are those of each style rendered alone."""
    import evaluation.report as report
    argv, exp = trained
    base = argv + ["--eval_factor", "1", "--eval_k_long", "3"] + render
    together, at_surface = [], []
    real, real_surface = report.prerender_styles, report.colour_at_surface
    monkeypatch.setattr(report, "prerender_styles", lambda *a, **k: together.append(len(a[3])) or real(*a, **k))
    monkeypatch.setattr(report, "colour_at_surface", lambda *a, **k: at_surface.append(1) or real_surface(*a, **k))
    name = "_".join(["eval_together"] + render[1:2])
    assert evaluate.main(base + ["--eval_name", name]) == 0
    assert together and together[0] >= 2  # the fixture's styles, rendered together
    assert bool(at_surface) == bool(render)
    monkeypatch.setattr(report, "prerender_styles", lambda *a, **k: None)
    alone = "_".join(["eval_alone"] + render[1:2])
    assert evaluate.main(base + ["--eval_name", alone]) == 0
    for csv in ("style_strength.csv", "consistency.csv", "consistency_backward.csv"):
        a, b = (open(os.path.join(exp, n, csv)).read() for n in (name, alone))
        if not render:  # the same render, only shared: byte for byte
            assert a == b, csv
        else:  # the same colours from the photoreal depth instead of a second density pass: to float rounding
            rows_a, rows_b = ([line.split(",") for line in text.splitlines()] for text in (a, b))
            assert [len(r) for r in rows_a] == [len(r) for r in rows_b], csv
            for ra, rb in zip(rows_a, rows_b):
                for x, y in zip(ra, rb):
                    try:
                        assert np.isclose(float(x), float(y), rtol=1e-5, atol=1e-6), (csv, x, y)
                    except ValueError:  # a name
                        assert x == y, csv


def test_one_point_styles_coloured_at_the_photoreal_surface_equal_their_render(trained):
    """evaluate.py colours one-point styles (--style_render_samples 1 --style_point surface) at the
    photoreal path's own fine depth and opacity (report.colour_at_surface) instead of a second
    density pass: the same frames as the one-point render."""
    import jittor as jt

    import evaluation.report as report
    from dataset.rays import image_rays
    from pipeline.style_stage import load_style_model
    from pipeline.stylized_render import render_with_latents
    from render.renderer import render_image
    argv, exp = trained
    args = parse_args(argv + ["--style_render_samples", "1", "--style_point", "surface"])
    scene = load_scene(args)
    system, _, _ = nerf_stage.load_trained_nerf(args, exp)
    model, _ = load_style_model(args, system, exp)
    opts = RenderOptions.from_args(args, scene, "eval")
    H, W, focal = int(scene.hwf[0]), int(scene.hwf[1]), scene.hwf[2]
    c2w = nerf_stage.valid_poses(args, scene)[1]
    ro, rd, vd = image_rays(H, W, focal, c2w, ndc=not args.no_ndc)
    coarse, fine = system.fields()
    photo = render_image(ro, rd, vd if args.use_viewdir else None, H, W, args.chunk, opts=opts, coarse_field=coarse,
                         fine_field=fine, coarse_rgb=False)["fine"]
    styles = list(range(len(model.style_names)))
    assert len(styles) >= 2
    at_surface = report.colour_at_surface(args, system, model, styles, H, W, focal, c2w, photo["depth"],
                                          photo["acc"], opts.white_bkgd)
    rendered = render_with_latents(system, model, [jt.array(model.mu[k]) for k in styles], args,
                                   opts.for_style(args), H, W, focal, c2w)
    assert not np.allclose(at_surface[0], at_surface[1], atol=1e-3)  # the styles differ
    for k in styles:
        np.testing.assert_allclose(at_surface[k], rendered[k]["fine"]["rgb"], atol=1e-4)


def test_another_eval_name_keeps_the_earlier_report(trained, capsys):
    """--eval_name: the report of other render options goes to its own folder, the default
    report stays as it was; a name that is not a plain folder name is one line, before any render."""
    argv, exp = trained
    base = argv + ["--eval_factor", "1", "--eval_k_long", "3"]
    if not os.path.exists(os.path.join(exp, "eval", "report.md")):
        assert evaluate.main(base) == 0
    before = open(os.path.join(exp, "eval", "report.md")).read()
    assert evaluate.main(base + ["--eval_name", "eval_k2", "--style_render_samples", "2"]) == 0
    assert open(os.path.join(exp, "eval", "report.md")).read() == before
    other = open(os.path.join(exp, "eval_k2", "report.md")).read()
    assert "stylized NeRF" in other and other != before
    capsys.readouterr()
    assert evaluate.main(base + ["--eval_name", "../elsewhere"]) == 2
    assert "--eval_name '../elsewhere': expected a folder name" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(os.path.dirname(exp), "elsewhere"))


class Interrupting:
    """module.name counted, and Ctrl-C (KeyboardInterrupt) at its call number `at` (0: never)."""

    def __init__(self, monkeypatch, module, name):
        self.calls, self.at = 0, 0
        real = getattr(module, name)

        def counting(*a, **k):
            self.calls += 1
            if self.at and self.calls == self.at:
                raise KeyboardInterrupt
            return real(*a, **k)
        monkeypatch.setattr(module, name, counting)

    def run(self, argv, at=0):
        """evaluate.py's exit code, the count started afresh."""
        self.calls, self.at = 0, at
        return evaluate.main(argv)


def test_a_cut_evaluation_resumes_where_it_stopped(trained, monkeypatch, capsys):
    """Ctrl-C in the middle of evaluate.py's renders: the frames rendered so far are kept, the
    next run renders only the rest, and its figures are those of an uncut run."""
    import evaluation.frame_cache as frame_cache
    import evaluation.report as report
    argv, exp = trained
    argv = argv + ["--eval_factor", "1", "--eval_k_long", "3"]
    monkeypatch.setattr(frame_cache, "KEEP_FREE", 0)  # whatever the machine's free disk
    renders = Interrupting(monkeypatch, report, "render_image")
    eval_dir = os.path.join(exp, "eval")
    assert renders.run(argv) == 0
    total = renders.calls
    uncut = {name: open(os.path.join(eval_dir, name)).read()
             for name in ("style_strength.csv", "consistency.csv", "consistency_backward.csv", "photoreal.csv")}
    assert not os.path.exists(os.path.join(eval_dir, "frames"))  # removed with the report written
    capsys.readouterr()
    assert renders.run(argv, at=total - 3) == 130
    kept = [f for f in os.listdir(os.path.join(eval_dir, "frames")) if f.endswith(".npz")]
    assert len(kept) == total - 4
    assert f"evaluation interrupted; the {total - 4} frames rendered so far are kept in" in capsys.readouterr().err
    assert renders.run(argv) == 0
    assert renders.calls == 4  # only the frames the cut run had not rendered
    assert f"{total - 4} rendered frames came from an earlier evaluation" in capsys.readouterr().out
    for name, text in uncut.items():
        assert open(os.path.join(eval_dir, name)).read() == text, name


def test_a_cut_evaluation_keeps_the_styles_it_had_measured(trained, monkeypatch, capsys):
    """Ctrl-C during the second style's measures: the next run measures only the styles left (the
    first one's rows, strip and log lines were kept beside the frames), to an uncut run's files."""
    import evaluation.frame_cache as frame_cache
    import evaluation.report as report
    argv, exp = trained
    argv = argv + ["--eval_factor", "1", "--eval_k_long", "3", "--eval_name", "eval_styles"]
    monkeypatch.setattr(frame_cache, "KEEP_FREE", 0)  # whatever the machine's free disk
    styles = Interrupting(monkeypatch, report, "adain_path")
    eval_dir = os.path.join(exp, "eval_styles")
    names = ("style_strength.csv", "style_loss_by_tap.csv", "summary.csv", "consistency.csv",
             "consistency_backward.csv")
    assert styles.run(argv) == 0
    n_styles = styles.calls
    assert n_styles >= 2
    uncut = {name: open(os.path.join(eval_dir, name)).read() for name in names}
    strips = {name: open(os.path.join(eval_dir, name), "rb").read() for name in os.listdir(eval_dir)
              if name.startswith("strip_")}
    first_lines = [line for line in capsys.readouterr().out.splitlines() if "warp: " in line][:2]
    assert styles.run(argv, at=2) == 130
    assert len([f for f in os.listdir(os.path.join(eval_dir, "frames")) if f.startswith("measures_")]) == 1
    capsys.readouterr()
    assert styles.run(argv) == 0
    assert styles.calls == n_styles - 1  # the first style's measures were kept
    out = capsys.readouterr().out
    assert "came from an earlier evaluation that was cut short" in out and all(line in out for line in first_lines)
    for name, text in uncut.items():
        assert open(os.path.join(eval_dir, name)).read() == text, name
    for name, data in strips.items():
        assert open(os.path.join(eval_dir, name), "rb").read() == data, name
    assert not os.path.exists(os.path.join(eval_dir, "frames"))


def test_a_path_too_short_for_the_frame_gap_is_refused_before_any_render(trained, monkeypatch, capsys):
    import evaluation.report as report
    argv, exp = trained

    def no_render(*a, **k):
        raise AssertionError("rendered before the check")
    monkeypatch.setattr(report, "render_image", no_render)
    assert evaluate.main(argv + ["--eval_k_long", "500"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the novel-view path has ") and "frame gap k = 500" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def _check_style_strength(argv, out, report):
    """Style-strength table, per-style summary and picture strips of the tiny experiment."""
    import csv
    import imageio.v2 as imageio
    from evaluation.figures import GAP
    from pipeline.style_selection import load_style_images
    args = parse_args(argv)
    with open(os.path.join(out, "style_strength.csv")) as f:
        rows = {(r["style"], r["method"]): r for r in csv.DictReader(f)}
    # stage 3 fine-tuned the decoder (2 iterations): per-frame AdaIN with the 2D decoder, the
    # reference, and with the 3D-tuned one, a row of its own
    methods = ("photoreal NeRF", "stylized NeRF", "per-frame AdaIN", "AdaIN carried in 3D",
               "per-frame AdaIN, decoder fine-tuned in 3D")
    styles = {"la_muse": "la_muse.jpg", "sketch": "sketch.png"}
    assert set(rows) == {(s, m) for s in styles.values() for m in methods}
    for s in styles.values():
        photo, adain = rows[(s, "photoreal NeRF")], rows[(s, "per-frame AdaIN")]
        # AdaIN's middle frame carried into every frame: stylized too, and its own row in the report
        carried = rows[(s, "AdaIN carried in 3D")]
        assert 0 < float(carried["style_gain"]) < 1 and float(carried["content_distance"]) > 0
        assert f"| {s} | AdaIN carried in 3D | " in report
        assert float(photo["content_distance"]) == 0 and float(photo["sharpness"]) == 1
        assert float(photo["style_gain"]) == 0 and float(photo["style_loss"]) > 0
        assert float(adain["content_distance"]) > 0
        # AdaIN moves the frames' statistics towards the style's: a positive gain
        assert 0 < float(adain["style_gain"]) < 1
        assert f"| {s} | stylized NeRF | " in report
    # the style loss split by tap: relu1_1..relu3_1, each row's terms add up to its style loss
    with open(os.path.join(out, "style_loss_by_tap.csv")) as f:
        taps = list(csv.DictReader(f))
    assert {r["tap"] for r in taps} == {"relu1_1", "relu2_1", "relu3_1"}
    assert all(float(r["std_level"]) > 0 for r in taps)
    for key, r in rows.items():
        total = sum(float(t["means_term"]) + float(t["stds_term"]) for t in taps if (t["style"], t["method"]) == key)
        assert total == pytest.approx(float(r["style_loss"]), rel=1e-9)
    assert "## Style loss by encoder tap" in report
    with open(os.path.join(out, "summary.csv")) as f:
        summary = list(csv.DictReader(f))
    with open(os.path.join(out, "consistency.csv")) as f:
        cons = {(r["style"], r["method"]): r for r in csv.DictReader(f)}
    with open(os.path.join(out, "consistency_backward.csv")) as f:
        back = {(r["style"], r["method"]): r for r in csv.DictReader(f)}
    assert set(back) == set(cons)
    assert [r["style"] for r in summary] == ["la_muse", "sketch"]
    for r in summary:
        s = styles[r["style"]]
        assert float(r["style_gain_adain"]) == pytest.approx(float(rows[(s, "per-frame AdaIN")]["style_gain"]))
        nerf_loss = float(rows[(s, "stylized NeRF")]["style_loss"])
        assert float(r["style_loss_ratio"]) == pytest.approx(nerf_loss / float(rows[(s, "per-frame AdaIN")]["style_loss"]))
        tuned = rows[(s, "per-frame AdaIN, decoder fine-tuned in 3D")]
        assert float(tuned["style_loss"]) != float(rows[(s, "per-frame AdaIN")]["style_loss"])
        assert float(r["style_loss_ratio_3d"]) == pytest.approx(nerf_loss / float(tuned["style_loss"]))
        for suffix, c in (("", cons), ("_backward", back)):
            want = float(c[(s, "stylized NeRF")]["k3_mean"]) / float(c[(s, "per-frame AdaIN")]["k3_mean"])
            assert float(r[f"consistency_ratio_k3{suffix}"]) == pytest.approx(want)
            # per-frame AdaIN carried in 3D from the middle frame: flicker-free, so below AdaIN's own
            carried = float(c[(s, "AdaIN carried in 3D")]["k3_mean"]) / float(c[(s, "per-frame AdaIN")]["k3_mean"])
            assert float(r[f"carried_ratio_k3{suffix}"]) == pytest.approx(carried) and carried < 1
        assert f"| {r['style']} | " in report.split("## Summary per style")[1]
    # strips: photoreal | stylized NeRF | per-frame AdaIN | style image, all at the frame height
    for stem, style in styles.items():
        name = f"strip_{stem}.png"
        assert f"![{style}]({name})" in report
        strip = imageio.imread(os.path.join(out, name)).astype(np.float32) / 255
        style_img = load_style_images([os.path.join(args.styledir, style)], args.style_size)[0]
        w = int(round(style_img.shape[1] * 47 / style_img.shape[0]))
        assert strip.shape == (47, 3 * 63 + 3 * GAP + w, 3)
        want = cv2.resize(style_img, (w, 47), interpolation=cv2.INTER_AREA)
        assert np.abs(strip[:, -w:] - want).max() < 1.5 / 255  # 8-bit rounding
        panels = [strip[:, i * (63 + GAP):i * (63 + GAP) + 63] for i in range(3)]
        assert np.abs(panels[0] - panels[2]).mean() > 0.02  # AdaIN's frame is not the photo


def test_bad_inputs_give_one_clear_line(trained, tmp_path, capsys):
    argv, exp = trained
    assert run_stylenerf.main(argv + ["--render_valid_style", "--style", "7"]) == 1
    assert "--style 7 is out of range" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_stylenerf.main(argv + ["--expname", "other", "--styledir", str(empty)]) == 1
    err = capsys.readouterr().err
    assert str(empty) in err
    assert run_stylenerf.main(argv + ["--expname", "never_trained", "--render_valid"]) == 1
    assert "no NeRF checkpoint" in capsys.readouterr().err
    assert run_stylenerf.main(argv + ["--datadir", str(tmp_path / "nowhere")]) == 1
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    assert run_stylenerf.main(argv + ["--render_train_style", "--gen_factor", "0.5"]) == 1
    assert "trained on 6" in capsys.readouterr().err
    assert run_stylenerf.main(argv + ["--factor", "0"]) == 2
    assert "--factor" in capsys.readouterr().err
    garbage = tmp_path / "000010.tar"
    garbage.write_bytes(b"\x00 not a checkpoint")
    assert run_stylenerf.main(argv + ["--expname", "warm", "--warm_start", str(garbage), "--render_valid"]) == 1
    err = capsys.readouterr().err
    assert "000010.tar is not a readable Jittor checkpoint" in err and "Traceback" not in err


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])  # Ctrl-C; timeout / kill / a job scheduler
def test_ctrl_c_saves_the_step_and_a_rerun_resumes(signame, tiny_scene, tiny_styles, tmp_path, monkeypatch, capsys,
                                                  vgg_relu3_path, decoder_relu3_path):
    import signal
    from dataset.rays import PixelRays
    argv = tiny_argv(tiny_scene, tiny_styles, str(tmp_path), vgg_relu3_path, decoder_relu3_path,
                     origin_step=12, total_step=12, i_weights=100)
    real_sample, calls = PixelRays.sample, []

    def sample(self, *a, **k):
        calls.append(1)
        if len(calls) == 7:  # the signal comes while step 7 runs
            os.kill(os.getpid(), getattr(signal, signame))
        return real_sample(self, *a, **k)
    monkeypatch.setattr(PixelRays, "sample", sample)
    assert run_stylenerf.main(argv) == 130
    assert "interrupted at step 7" in capsys.readouterr().err
    assert os.listdir(os.path.join(str(tmp_path), "tiny")).count("nerf_000007.pkl") == 1
    calls.clear()
    assert run_stylenerf.main(argv) == 0
    assert len(calls) == 5  # steps 8..12 only
    assert os.path.exists(os.path.join(str(tmp_path), "tiny", "nerf_000012.pkl"))


def test_compute_options_reach_the_layers(monkeypatch):
    from models import layers
    from pipeline.stages import apply_compute_options
    monkeypatch.setattr(layers, "LINEAR_IMPL", "jittor")
    apply_compute_options(parse_args(["--gemm", "cublas", "--matmul", "fp32"]))
    assert layers.LINEAR_IMPL == "cublas"
    apply_compute_options(parse_args([]))
    assert layers.LINEAR_IMPL == "cublaslt"  # the default (Jittor's matmul where unusable)
    with pytest.raises(ValueError, match="argument --gemm: invalid choice: 'tensor'"):  # one line, no usage
        parse_args(["--gemm", "tensor"])
    # the former environment switches are options now
    from backend import cublaslt, cudnn
    apply_compute_options(parse_args(["--cudnn_search", "0", "--cublaslt_bgrad", "epilogue"]))
    assert not cudnn.algorithm_search() and cublaslt.bias_grad_mode() == "epilogue"
    apply_compute_options(parse_args([]))
    assert cudnn.algorithm_search() and cublaslt.bias_grad_mode() == "kernel"


def test_fine_sampling_option_randomises_training_samples_only():
    """--fine_sampling random: the training steps read the coarse weights' inverse CDF at random
    quantiles (nerf-pytorch), det (default, the original) at fixed ones; renders always fixed."""
    import jittor as jt
    from render.renderer import render_rays
    scene = SimpleNamespace(near_far=lambda ndc: (0.0, 1.0))
    field = lambda pts, vd: (jt.sigmoid(pts[..., :3] * 3.0), jt.sin(pts[..., 2] * 7.0) * 5.0)  # noqa: E731
    rays_o = jt.array(np.zeros((4, 3), np.float32))
    rays_d = jt.array(np.tile(np.array([[0.1, -0.2, 1.0]], np.float32), (4, 1)))
    for opt, phase, same in (("det", "train", True), ("random", "train", False), ("random", "eval", True),
                             ("random", "frozen_geometry", False)):
        args = parse_args(["--fine_sampling", opt, "--perturb", "0", "--sigma_noise_std", "0"])
        opts = RenderOptions.from_args(args, scene, phase)
        assert opts.deterministic_fine == same
        z = [render_rays(rays_o, rays_d, None, field, opts=opts)["fine"]["z_vals"].numpy() for _ in range(2)]
        assert np.array_equal(z[0], z[1]) == same, (opt, phase)
    assert parse_args([]).fine_sampling == "det"
    with pytest.raises(ValueError, match="argument --fine_sampling: invalid choice: 'uniform'"):
        parse_args(["--fine_sampling", "uniform"])


def test_render_chunk_is_capped_on_the_cpu(capsys):
    """A GPU-sized --chunk (fern_quick: 32768 rays) would take tens of GB of host memory in a
    CPU render; on the CPU it is lowered, with a line saying so; smaller values stay."""
    from pipeline.stages import CPU_MAX_CHUNK, apply_compute_options
    args = parse_args(["--chunk", "32768"])
    apply_compute_options(args)
    assert args.chunk == CPU_MAX_CHUNK
    assert f"--chunk 32768 -> {CPU_MAX_CHUNK}" in capsys.readouterr().out
    args = parse_args(["--chunk", "1024"])
    apply_compute_options(args)
    assert args.chunk == 1024


def test_pipeline_benchmark_pretrains_the_vae_and_reruns_warm(tiny_scene, tiny_styles, tmp_path,
                                                            vgg_relu3_path, decoder_relu3_path, capsys):
    """bench/bench_pipeline.py: an AdaIN decoder (where only the inverter is there) and the VAE
    are pre-trained first (stage 0, outside stages 2-6), the warm re-run repeats stages 2-6 from
    a copy of the NeRF checkpoint alone, and the JSON holds both sets of stage times."""
    import json
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import bench_pipeline
    base = str(tmp_path)
    pretrained = os.path.join(base, "pretrained")
    os.makedirs(pretrained)
    os.symlink(decoder_relu3_path, os.path.join(pretrained, "feature_invertor_conv3_1.pth"))  # only the inverter
    vae = os.path.join(pretrained, "vae.pkl")
    argv = tiny_argv(tiny_scene, tiny_styles, base, vgg_relu3_path, os.path.join(pretrained, "decoder.pth"),
                     vae_pth_path=vae, origin_step=10, total_step=14, i_weights=5, style="la_muse")
    out = os.path.join(base, "bench.json")
    decoder_args = f"--content_dir {tiny_scene}/images_64 --image_size 48 --crop_size 32 --batch_size 2"
    bench_pipeline.main(["--config", "configs/fern_quick.txt", "--warm_rerun", "--no_eval", "--out", out,
                         "--decoder_iters", "2", "--decoder_train_args", decoder_args, "--extra"] + argv)
    assert os.path.exists(vae) and os.path.exists(os.path.join(pretrained, "decoder_finetuned.pkl"))
    assert "using " + os.path.join(pretrained, "decoder_finetuned.pkl") in capsys.readouterr().out  # by stage 3
    result = json.load(open(out))
    assert set(result["stages"]) >= {"0 decoder pre-training (train_style_modules.py --task finetune_decoder)",
                                     "0 VAE pre-training (train_style_modules.py --task vae)", "1 NeRF",
                                     "2 geometry", "6 style training"}
    warm = result["warm"]["stages"]
    assert set(warm) >= {"2 geometry", "3 decoder fine-tune", "4 stylized targets", "5 latents (VAE)",
                         "6 style training"} and not any(k.startswith("0") for k in warm)
    assert result["warm"]["stylization_2_6_s"] == pytest.approx(sum(v for k, v in warm.items() if k[0] in "23456"))
    warm_dir = os.path.join(base, "tiny_warm")
    assert sorted(f for f in os.listdir(warm_dir) if f.startswith("nerf_")) == ["nerf_000010.pkl"]
    assert os.path.exists(os.path.join(warm_dir, "style_000014.pkl"))
    assert "render_valid_style" in result["after"]
    # the videos it rendered are the ones valid_videos lists; a rerun (after an evaluation cut
    # short, say) does not render them again, unless one is missing
    from pipeline import render_files
    root = render_files.render_dir(os.path.join(base, "tiny"), "valid", 14)
    videos = render_files.valid_videos(root, ["la_muse"])
    assert sorted(videos) == sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".mp4"))
    rerun = ["--config", "configs/fern_quick.txt", "--no_eval", "--out", out, "--decoder_iters", "2", "--extra"] + argv
    bench_pipeline.main(rerun)
    assert "render_valid_style" not in json.load(open(out))["after"]
    os.remove(videos[-1])
    bench_pipeline.main(rerun)
    assert "render_valid_style" in json.load(open(out))["after"] and os.path.isfile(videos[-1])


def test_nerf_benchmark_resumes_over_runs_and_stops_cleanly_on_sigterm(tiny_scene, tiny_styles, tmp_path, monkeypatch,
                                                                       capsys, vgg_relu3_path, decoder_relu3_path):
    """bench/bench_nerf.py --basedir: SIGTERM (a job's time limit) saves the step reached;
    the next run resumes there, skips step counts already passed, and evaluates the last."""
    import json
    import signal
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import bench_nerf
    from dataset.rays import PixelRays
    argv = tiny_argv(tiny_scene, tiny_styles, str(tmp_path), vgg_relu3_path, decoder_relu3_path)
    drop = {"--datadir", "--basedir", "--expname", "--origin_step", "--i_weights"}  # the benchmark's own
    extra = [a for i, a in enumerate(argv) if a not in drop and argv[i - 1] not in drop]
    base, out = str(tmp_path / "b"), str(tmp_path / "nerf.json")
    cmd = ["--datadir", tiny_scene, "--basedir", base, "--eval_at", "4", "8", "12", "--out", out, "--extra"] + extra
    real_sample, calls = PixelRays.sample, []

    def sample(self, *a, **k):
        calls.append(1)
        if len(calls) == 6:  # the time limit ends while step 6 runs
            os.kill(os.getpid(), signal.SIGTERM)
        return real_sample(self, *a, **k)
    monkeypatch.setattr(PixelRays, "sample", sample)
    bench_nerf.main(cmd)
    rows = json.load(open(out))["rows"]
    assert [r.get("steps") for r in rows] == [4, None] and rows[1]["stopped_at"] == 6
    assert os.path.exists(os.path.join(base, "bench", "nerf_000006.pkl"))
    monkeypatch.setattr(PixelRays, "sample", real_sample)
    capsys.readouterr()
    bench_nerf.main(cmd)
    assert "resuming from step 6" in capsys.readouterr().out
    rows = json.load(open(out))["rows"]
    assert [r["steps"] for r in rows] == [8, 12] and rows[0]["segment_steps"] == 2
    assert all(r["heldout_psnr"] > 0 and r["train_psnr"] > 0 and r["train_views"] == [1] for r in rows)


def test_spherified_capture_trains_and_renders_its_video(tmp_path, tiny_styles, vgg_relu3_path,
                                                           decoder_relu3_path, capsys):
    """--spherify --no_ndc: a 360-degree capture (tests/synthetic_scene.write_ring_capture) goes
    through the NeRF stage and --render_valid (the path between the ring's views, then the
    circle around the object; mp4 videos)."""
    from tests.synthetic_scene import write_ring_capture
    scene_dir = str(tmp_path / "ring")
    write_ring_capture(scene_dir, n=6)
    argv = tiny_argv(scene_dir, tiny_styles, str(tmp_path / "logs"), vgg_relu3_path, decoder_relu3_path,
                     factor=1, origin_step=4, i_weights=4, valid_factor=0.5) + ["--spherify", "--no_ndc"]
    args = parse_args(argv)
    scene = load_scene(args)
    assert np.sqrt(np.mean(np.sum(scene.poses[:, :, 3] ** 2, 1))) == pytest.approx(1.0, rel=1e-5)
    expdir = os.path.join(str(tmp_path / "logs"), "tiny")
    nerf_stage.train_nerf(args, scene, expdir, log=lambda *_: None)
    for path_type, n_frames in (("interp", 12), ("circle", 12)):  # 6 views x 2 frames an interval
        assert run_stylenerf.main(argv + ["--render_valid", "--render_path_type", path_type]) == 0
        outdir = os.path.join(expdir, "render_valid_4")
        assert len([f for f in os.listdir(outdir) if f.startswith("fine_0")]) == n_frames
        assert len(_frames(os.path.join(outdir, "fine_rgb.mp4"))) == n_frames


def test_committed_fern_nerf_renders_the_heldout_views(fern_dir, fern_long_expdir):
    """The committed NeRF loads with today's code and, rendered on the CPU, reproduces random
    held-out pixels of the real fern photos: the model, sampling and compositing end to end
    against a real trained model (an untrained one scores 9.6 dB)."""
    args = parse_args(["--config", "configs/fern.txt", "--datadir", fern_dir, "--device", "cpu", "--matmul", "fp32"])
    scene = load_scene(args)
    system, step, _ = nerf_stage.load_trained_nerf(args, fern_long_expdir)
    assert step == 120001 and list(scene.i_test) == [0, 8, 16]
    from dataset.rays import image_rays
    from render.renderer import render_image
    H, W, focal = scene.hwf
    coarse, fine = system.fields()
    opts = RenderOptions.from_args(args, scene, "eval")
    rng = np.random.default_rng(0)
    psnrs = []
    for i in scene.i_test:
        ro, rd, vd = image_rays(int(H), int(W), focal, scene.poses[i], ndc=True)
        px = rng.choice(len(ro), 600, replace=False)
        out = render_image(ro[px], rd[px], vd[px], 1, len(px), 4096, opts=opts, coarse_field=coarse,
                           fine_field=fine)
        err = out["fine"]["rgb"].reshape(-1, 3) - scene.images[i].reshape(-1, 3)[px]
        psnrs.append(nerf_stage.mse_to_psnr(np.mean(err ** 2)))
    assert np.mean(psnrs) > 23.0, psnrs


def test_checkpoint_evaluation_script_on_the_committed_nerf(fern_dir, fern_long_expdir, capsys, tmp_path):
    """bench/eval_nerf.py: PSNR on a pixel grid of the held-out and of chosen views; a bad view id
    or folder gives one `error:` line and exit code 1."""
    import re
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import eval_nerf

    def run(*views, expdir=fern_long_expdir):
        return eval_nerf.main(["--expdir", expdir, "--datadir", fern_dir, "--stride", "32",
                               "--views", *views, "--extra", "--device", "cpu"])
    assert run("test", "9") == 0
    out = capsys.readouterr().out
    assert "nerf_120001.pkl (step 120001)" in out and "test view  16" in out and "9 view   9" in out
    means = {g: float(v) for g, v in re.findall(r"^(\S+): mean PSNR ([\d.]+)", out, re.M)}
    assert 23.0 < means["test"] < 26.5 and means["9"] > 23.0, means
    for views, expdir, msg in ((["1,x"], fern_long_expdir, "expected test, train or view ids"),
                               (["3,20"], fern_long_expdir, "view ids [20] out of range"),
                               (["test"], str(tmp_path), "no NeRF checkpoint")):
        assert run(*views, expdir=expdir) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err and "Traceback" not in err, err


# ---- faults: bad inputs found before the NeRF stage, OS failures, damaged checkpoints ----------

@pytest.mark.parametrize("fault", ["style_image", "vgg", "decoder", "vae", "vae_training_style"])
def test_bad_inputs_of_later_stages_stop_the_run_before_the_nerf_stage(
        fault, tiny_scene, tiny_styles, tmp_path, monkeypatch, capsys, vgg_relu3_path, decoder_relu3_path):
    import shutil
    styles, vae_styles = tmp_path / "styles", tmp_path / "vae_styles"
    shutil.copytree(tiny_styles, styles)
    shutil.copytree(tiny_styles, vae_styles)
    vgg, decoder, vae = vgg_relu3_path, decoder_relu3_path, str(tmp_path / "none.pkl")
    if fault == "style_image":
        bad = styles / "sketch.png"
        bad.write_bytes(bad.read_bytes()[:100])
    elif fault == "vae_training_style":
        bad = vae_styles / "la_muse.jpg"
        bad.write_bytes(b"\xff\xd8 not really a JPEG")
    else:
        src = {"vgg": vgg, "decoder": decoder}.get(fault, vgg)
        bad = tmp_path / ("vae.pkl" if fault == "vae" else os.path.basename(src))
        data = open(src, "rb").read()
        bad.write_bytes(data[:len(data) // 2])
        vgg, decoder, vae = {"vgg": (str(bad), decoder, vae), "decoder": (vgg, str(bad), vae),
                             "vae": (vgg, decoder, str(bad))}[fault]
    argv = tiny_argv(tiny_scene, str(styles), str(tmp_path / "logs"), vgg, decoder, vae_pth_path=vae,
                     vae_style_dir=str(vae_styles))

    def no_nerf(*a, **k):
        raise AssertionError("the NeRF stage started")
    monkeypatch.setattr(nerf_stage, "train_nerf", no_nerf)
    assert run_stylenerf.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and str(bad) in err


def test_a_full_disk_at_a_nerf_checkpoint_is_one_line_and_the_rerun_resumes(
        tiny_scene, tiny_styles, tmp_path, monkeypatch, capsys, vgg_relu3_path, decoder_relu3_path):
    import errno
    import pickle

    import core.checkpoint as ckmod
    argv = tiny_argv(tiny_scene, tiny_styles, str(tmp_path), vgg_relu3_path, decoder_relu3_path,
                     origin_step=12, total_step=12, i_weights=4)
    exp = tmp_path / "tiny"
    real_dump = pickle.dump

    def dump(obj, f, protocol=None):
        if obj.get("step") == 8:
            f.write(b"\x80\x04 half a checkpoint")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # from write(): no file name
        return real_dump(obj, f, protocol=protocol)
    monkeypatch.setattr(ckmod.pickle, "dump", dump)
    assert run_stylenerf.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err == (f"error: {exp / 'nerf_000008.pkl'}: No space left on device (ENOSPC); free some space "
                   "or write elsewhere (--basedir, --save_dir, --output)")
    assert sorted(f for f in os.listdir(exp) if f.startswith("nerf_")) == ["nerf_000004.pkl"]
    monkeypatch.setattr(ckmod.pickle, "dump", real_dump)
    assert run_stylenerf.main(argv) == 0
    assert "resumed NeRF from" in capsys.readouterr().out
    assert sorted(f for f in os.listdir(exp) if f.startswith("nerf_")) == \
        ["nerf_000004.pkl", "nerf_000008.pkl", "nerf_000012.pkl"]


def test_a_corrupt_newest_nerf_checkpoint_resumes_from_the_one_before(
        tiny_scene, tiny_styles, tmp_path, capsys, vgg_relu3_path, decoder_relu3_path, count_steps):
    argv = tiny_argv(tiny_scene, tiny_styles, str(tmp_path), vgg_relu3_path, decoder_relu3_path,
                     origin_step=8, total_step=8, i_weights=4)
    exp = tmp_path / "tiny"
    assert run_stylenerf.main(argv) == 0
    newest = exp / "nerf_000008.pkl"
    newest.write_bytes(newest.read_bytes()[:1000])
    (exp / "nerf_000012.pkl.tmp").write_bytes(b"left by a kill")
    (exp / "decoder.pkl.tmp").write_bytes(b"left by a kill")
    count_steps.clear()
    for _ in range(2):  # the rerun resumes; so does the one after it
        assert run_stylenerf.main(argv) == 0
    out = capsys.readouterr()
    warning = [ln for ln in (out.out + out.err).splitlines() if ln.startswith("warning:")]
    assert len(warning) == 1 and str(newest) in warning[0] and str(exp / "nerf_000004.pkl") in warning[0]
    assert len(count_steps) == 4  # steps 5..8 again, once
    assert (exp / "nerf_000008.pkl.corrupt").exists() and not (exp / "nerf_000012.pkl.tmp").exists()
    assert not (exp / "decoder.pkl.tmp").exists()
    # a render may run beside a training run: it leaves the files being written alone
    (exp / "nerf_000012.pkl.tmp").write_bytes(b"being written")
    assert nerf_stage.load_trained_nerf(parse_args(argv), str(exp))[1] == 8
    assert (exp / "nerf_000012.pkl.tmp").exists()


def test_a_long_stage_says_how_long_and_names_the_quick_cpu_config(
        tiny_scene, tiny_styles, tmp_path, monkeypatch, capsys, vgg_relu3_path, decoder_relu3_path):
    from core import eta
    monkeypatch.setattr(eta, "LONG_S", 0.0)  # tiny steps: make any remaining time "long"
    monkeypatch.setattr(eta, "MEASURE_S", 0.0)
    monkeypatch.setattr(eta, "STABLE", 10.0)  # tiny steps' times scatter: any two windows agree
    argv = tiny_argv(tiny_scene, tiny_styles, str(tmp_path), vgg_relu3_path, decoder_relu3_path,
                     origin_step=8, total_step=8, i_weights=100)
    assert run_stylenerf.main(argv) == 0
    out = capsys.readouterr()
    notes = [ln for ln in (out.out + out.err).splitlines() if ln.startswith("note: the NeRF stage")]
    # windows of one step from step 2 on: steps 2-3 and 3-4, so 4 of the 8 steps are left
    assert len(notes) == 1 and "4 steps left" in notes[0] and "configs/fern_cpu.txt" in notes[0]


def test_style_levers_trains_variants_on_the_shared_stages_and_tabulates_them(
        tiny_scene, tiny_styles, tmp_path, vgg_relu3_path, decoder_relu3_path, capsys):
    """bench/style_levers.py: stages 1-5 once, then a variant in a folder of its own that links
    the base's NeRF, geometry and decoder (its full-size targets are its own: fern_quick's are at
    half size), its style stage with the texture term, evaluate.py, and a row per style from the
    evaluation's CSV files."""
    import json
    import shlex
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import style_levers
    base = str(tmp_path)
    argv = tiny_argv(tiny_scene, tiny_styles, base, vgg_relu3_path, decoder_relu3_path, total_step=30,
                     style="la_muse,sketch")
    out = os.path.join(base, "levers.json")
    rc = style_levers.main(["--config", "configs/fern_quick.txt", "--common", shlex.join(argv),
                            "--variant", "f1=--target_factor 1 --style_patch_weight 0.1 --style_patch 8 --total_step 33",
                            "--eval", "--eval_frames 4 --eval_k_long 2", "--out", out])
    assert rc == 0, capsys.readouterr().out
    exp, var = os.path.join(base, "tiny"), os.path.join(base, "tiny_f1")
    assert os.path.samefile(os.path.join(exp, "nerf_000030.pkl"), os.path.join(var, "nerf_000030.pkl"))
    assert os.path.samefile(os.path.join(exp, "decoder.pkl"), os.path.join(var, "decoder.pkl"))
    assert os.path.islink(os.path.join(var, "geometry"))
    base_t = np.load(os.path.join(exp, "targets", "000_la_muse.npy"), mmap_mode="r")
    var_t = np.load(os.path.join(var, "targets", "000_la_muse.npy"), mmap_mode="r")
    assert base_t.shape[1:3] == (var_t.shape[1] // 2, var_t.shape[2] // 2)
    assert os.path.exists(os.path.join(var, "style_000033.pkl"))
    assert not any(f.startswith("style_") and f.endswith(".pkl") for f in os.listdir(exp) if f != "style_000031.pkl")
    rows = json.load(open(out))["rows"]
    assert [r["style"] for r in rows] == ["la_muse", "sketch"]
    for r in rows:
        assert r["variant"] == "f1" and r["style_steps"] == 3
        assert r["style_loss_ratio"] == pytest.approx(r["style_loss_nerf"] / r["style_loss_adain"])
        assert np.isfinite([r["sharpness_nerf"], r["consistency_ratio_k1"]]).all()
    assert "| f1 | la_muse |" in capsys.readouterr().out


def test_consistency_floor_diagnostic_carries_adain_without_a_stylized_nerf(trained, tmp_path, capsys):
    """bench/diag/diag_consistency_floor.py: per-frame AdaIN of the photoreal path against the same
    carried in 3D, from the NeRF and decoder alone; its ratios are the report's definition."""
    import json
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "diag"))
    import diag_consistency_floor
    argv, exp = trained
    out, npz = str(tmp_path / "floor.json"), str(tmp_path / "path.npz")
    common = argv + ["--eval_factor", "1", "--eval_k_long", "3", "--path_npz", npz]
    assert diag_consistency_floor.main(common + ["--floor_out", out]) == 0
    got = json.load(open(out))
    assert sorted(got["styles"]) == ["la_muse.jpg", "sketch.png"] and got["ks"] == [1, 3]
    for res in got["styles"].values():
        assert 0.5 < res["coverage"] <= 1 and res["sharpness_adain"] > 0
        for warp in ("forward", "backward"):
            adain, carried = res[warp]["per-frame AdaIN"], res[warp]["AdaIN carried in 3D"]
            for k in (1, 3):
                assert res[warp]["carried_ratio"][str(k)] == pytest.approx(carried[f"k{k}_mean"] / adain[f"k{k}_mean"])
            assert carried["k1_mean"] < adain["k1_mean"]  # flicker-free where carried
        assert res["style_loss_ratio"] == pytest.approx(res["style_loss_carried"] / res["style_loss_adain"])
        by = res["style_ratio_by_distance"]  # the middle frame is carried onto itself: AdaIN's own
        assert sorted(by, key=int)[0] == "0" and by["0"] == pytest.approx(1.0)
        assert len(by) == got["frames"] // 2 + 1
        prop = res["propagated"]  # the central frame is kept, so some pixels are its own
        assert 0 < prop["taken"] < 1 and prop["style_loss"] > 0
        assert prop["ratio_backward"]["1"] < 1  # more consistent than per-frame AdaIN
    out = capsys.readouterr().out
    assert "carried / per-frame: k=1 " in out and "carried / per-frame by frames from the middle one: 0: 1.00x" in out
    # the kept path read back gives the same figures; an occlusion test carries less of it
    again, occ = str(tmp_path / "again.json"), str(tmp_path / "occ.json")
    assert diag_consistency_floor.main(common + ["--floor_out", again]) == 0
    assert "photoreal path read from" in capsys.readouterr().out and json.load(open(again)) == got
    assert diag_consistency_floor.main(common + ["--carry_occlusion_tol", "0.03", "--floor_out", occ]) == 0
    for name, res in json.load(open(occ))["styles"].items():
        assert res["coverage"] < got["styles"][name]["coverage"]


def test_a_finished_style_stage_is_not_reused_for_other_inputs(trained, tmp_path, monkeypatch, capsys):
    """A copy of the finished experiment: another style option is refused before the NeRF stage;
    other targets (--target_propagation) are remade and then refused at stage 6, both naming what
    changed; --no_reload trains the style stage again."""
    import shutil
    argv, exp = trained
    shutil.copytree(exp, tmp_path / "tiny")
    argv = argv + ["--basedir", str(tmp_path)]
    assert run_stylenerf.main(argv) == 0                       # unchanged: still done
    capsys.readouterr()

    def no_nerf(*a, **k):
        raise AssertionError("the NeRF stage ran")
    monkeypatch.setattr(nerf_stage, "train_nerf", no_nerf)
    assert run_stylenerf.main(argv + ["--rgb_loss_lambda", "2"]) == 1
    err = capsys.readouterr().err
    assert "style_000040.pkl was trained with other inputs than this run's (--rgb_loss_lambda 1.0 -> 2.0)" in err
    assert "Traceback" not in err
    assert run_stylenerf.main(argv + ["--target_propagation", "--mimic_every", "0"]) == 1
    captured = capsys.readouterr()
    assert "stage 4 stylized targets: to run" in captured.out
    assert "was trained with other inputs than this run's (the targets (" in captured.err
    before = os.path.getmtime(tmp_path / "tiny" / "style_000040.pkl")
    assert run_stylenerf.main(argv + ["--target_propagation", "--mimic_every", "0", "--no_reload"]) == 0
    assert os.path.getmtime(tmp_path / "tiny" / "style_000040.pkl") > before
    assert run_stylenerf.main(argv + ["--target_propagation", "--mimic_every", "0"]) == 0  # its own record now
