"""train_style_modules.py (in-process): decoder training + resume, VAE, stylize, errors."""
import os

import imageio.v2 as imageio
import numpy as np
import pytest

import train_style_modules
from core.config import parse_pretrain_args
from core.checkpoint import load
from dataset.image_folder import list_images, load_image
from models.decoder import Decoder
from models.vae import StyleVAE


def _write_small(src, dst, side=72):
    imageio.imwrite(dst, (np.clip(load_image(src, max_side=side), 0, 1) * 255 + 0.5).astype(np.uint8))


@pytest.fixture(scope="module")
def folders(tmp_path_factory, fern_dir, styles_dir, vgg_relu3_path, decoder_relu3_path):
    """2 small fern contents, 2 small styles, and a pretrained/ folder holding only the relu3_1 files."""
    root = tmp_path_factory.mktemp("style_modules")
    for name in ("contents", "styles", "pre", "empty"):
        (root / name).mkdir()
    ferns = sorted(os.listdir(os.path.join(fern_dir, "images_8")))[:2]
    for f in ferns:
        _write_small(os.path.join(fern_dir, "images_8", f), str(root / "contents" / f))
    for p in [p for p in list_images(styles_dir) if "la_muse" in p or "mondrian.jpg" in p]:
        _write_small(p, str(root / "styles" / (os.path.splitext(os.path.basename(p))[0] + ".png")))
    os.symlink(vgg_relu3_path, root / "pre" / "vgg_normalised_conv3_1.pth")
    os.symlink(decoder_relu3_path, root / "pre" / "feature_invertor_conv3_1.pth")
    return root


def _common(root, save_dir):
    pre = root / "pre"
    return ["--content_dir", str(root / "contents"), "--style_dir", str(root / "styles"),
            "--vgg", str(pre / "vgg_normalised.pth"), "--decoder", str(pre / "decoder.pth"),
            "--save_dir", str(save_dir), "--image_size", "40", "--crop_size", "32", "--batch_size", "2",
            "--device", "cpu"]


def _decoder_run(root, save_dir, max_iter):
    argv = ["--task", "finetune_decoder", "--max_iter", str(max_iter), "--save_model_interval", "2"]
    return train_style_modules.main(argv + _common(root, save_dir))


def test_decoder_training_checkpoints_grid_and_resume(folders, tmp_path, capsys):
    a = tmp_path / "a"
    assert _decoder_run(folders, a, 3) == 0
    out = capsys.readouterr().out
    assert "vgg_normalised.pth not found; using" in out and "relu3_1" in out
    assert "initialised from" in out and "feature_invertor_conv3_1.pth" in out
    assert sorted(os.listdir(a)) == ["decoder_finetuned.pkl", "decoder_samples", "decoder_train_000002.pkl",
                                     "decoder_train_000003.pkl"]
    grid = imageio.imread(a / "decoder_samples" / "decoder_000003.png")
    assert grid.shape == (2 * 32, 3 * 32, 3) and grid.std() > 5
    ck3 = load(str(a / "decoder_train_000003.pkl"))
    assert ck3["iter"] == 3 and np.isfinite(ck3["loss_content"]) and np.isfinite(ck3["loss_style"])

    # a second run continues at iteration 3 ...
    assert _decoder_run(folders, a, 5) == 0
    assert "(iteration 3)" in capsys.readouterr().out
    ck5 = load(str(a / "decoder_train_000005.pkl"))
    assert ck5["iter"] == 5
    final = Decoder.load(str(a / "decoder_finetuned.pkl"), 256)
    for k, v in final.weights().items():
        np.testing.assert_array_equal(v, ck5["decoder"][k])
    # ... and ends where an uninterrupted run of 5 ends (weights, Adam state and batches restored)
    b = tmp_path / "b"
    assert _decoder_run(folders, b, 5) == 0
    straight = load(str(b / "decoder_train_000005.pkl"))
    for k, v in straight["decoder"].items():
        np.testing.assert_allclose(ck5["decoder"][k], v, rtol=1e-5, atol=1e-6, err_msg=k)
    changed = any(not np.array_equal(ck3["decoder"][k], ck5["decoder"][k]) for k in ck5["decoder"])
    assert changed  # iterations 4 and 5 did train


def test_vae_task_and_stats_cache(folders, tmp_path, capsys):
    save = tmp_path / "vae"
    argv = ["--task", "vae", "--max_iter", "5", "--save_model_interval", "5", "--lr", "1e-3"] + _common(folders, save)
    assert train_style_modules.main(argv) == 0
    vae = StyleVAE.load(str(save / "vae.pkl"))
    assert vae.in_dim == 512 and vae.latent == 32
    ck = load(str(save / "vae.pkl"))
    assert ck["iter"] == 5 and ck["styles"] == ["la_muse.png", "mondrian.png"]
    assert load(str(save / "vae_train_000005.pkl"))["iter"] == 5
    assert (save / "vae_style_stats.npz").is_file()
    capsys.readouterr()
    argv[argv.index("--max_iter") + 1] = "6"
    assert train_style_modules.main(argv) == 0
    out = capsys.readouterr().out
    assert "style statistics: " in out and "(iteration 5)" in out  # cached stats, resumed


def test_stylize_moves_colours_toward_the_style(folders, tmp_path, capsys):
    content = sorted((folders / "contents").iterdir())[0]
    style = folders / "styles" / "mondrian.png"
    out = tmp_path / "out.png"
    argv = ["--task", "stylize", "--content", str(content), "--style_image", str(style), "--output", str(out),
            "--image_size", "48"] + _common(folders, tmp_path)[:8]
    assert train_style_modules.main(argv) == 0
    img = imageio.imread(out).astype(np.float32) / 255
    c = load_image(str(content), short_side=48)
    s = load_image(str(style), short_side=48)
    assert img.shape == c.shape
    # per-channel colour statistics of the result are closer to the style's than the content's were
    stats = lambda x: np.concatenate([x.mean((0, 1)), x.std((0, 1))])  # noqa: E731
    d_before, d_after = np.abs(stats(c) - stats(s)).sum(), np.abs(stats(img) - stats(s)).sum()
    print(f"colour-statistics distance to the style: content {d_before:.3f}, output {d_after:.3f}")
    assert d_after < 0.7 * d_before


def test_user_errors_are_one_clear_line(folders, tmp_path, capsys):
    common = _common(folders, tmp_path / "x")
    bad_content = common.copy()
    bad_content[1] = str(tmp_path / "nowhere")
    assert train_style_modules.main(["--task", "finetune_decoder"] + bad_content) == 1
    assert f"error: image folder {tmp_path / 'nowhere'} not found" in capsys.readouterr().err
    empty = common.copy()
    empty[3] = str(folders / "empty")
    assert train_style_modules.main(["--task", "vae"] + empty) == 1
    assert "holds no .jpg/.jpeg/.png files" in capsys.readouterr().err
    junk = tmp_path / "vgg_normalised.pth"
    junk.write_text("not weights")
    bad_vgg = common.copy()
    bad_vgg[5] = str(junk)
    assert train_style_modules.main(["--task", "finetune_decoder"] + bad_vgg) == 1
    assert "vgg_normalised.pth is not a PyTorch .pth file" in capsys.readouterr().err
    no_vgg = common.copy()
    no_vgg[5] = str(tmp_path / "none" / "vgg_normalised.pth")
    assert train_style_modules.main(["--task", "finetune_decoder"] + no_vgg) == 1
    assert "get_assets.py" in capsys.readouterr().err
    assert train_style_modules.main(["--task", "stylize"] + common) == 1
    assert "--task stylize needs --content" in capsys.readouterr().err
    assert train_style_modules.main(["--task", "vae", "--crop_size", "8"] + common[:-8] + common[-4:]) == 1
    assert "--crop_size must be at least 16" in capsys.readouterr().err


def test_decoder_from_scratch_and_nothing_left_to_train(folders, tmp_path, capsys):
    argv = _common(folders, tmp_path / "s")
    argv[argv.index("--decoder") + 1] = "none"
    assert train_style_modules.main(["--task", "finetune_decoder", "--max_iter", "1"] + argv) == 0
    assert "training from scratch" in capsys.readouterr().out
    argv[argv.index("--decoder") + 1] = str(tmp_path / "missing" / "decoder.pth")
    assert train_style_modules.main(["--task", "finetune_decoder", "--max_iter", "1"] + argv) == 0
    out = capsys.readouterr().out
    assert "(iteration 1)" in out and "nothing to train" in out
    assert Decoder.load(str(tmp_path / "s" / "decoder_finetuned.pkl")).deepest_channels == 256


def test_content_dir_takes_several_folders_and_the_recipe_config_parses(folders):
    from pipeline.pretrain_2d import ImagePool, StyleModulesError, check_args
    pool = ImagePool(f"{folders / 'contents'},{folders / 'styles'}", 0)
    assert len(pool) == 4  # 2 fern views + 2 styles
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = parse_pretrain_args(
        ["--task", "finetune_decoder", "--config", os.path.join(root, "configs", "decoder_relu3_1.txt")])
    assert (args.content_dir, args.image_size, args.style_weight, args.max_iter) == \
        ("./all_contents/,./all_styles/", 256, 20.0, 2000)
    args.gram_weight = -1.0
    with pytest.raises(StyleModulesError, match="--gram_weight must not be negative"):
        check_args(args)


def test_decoder_training_checks_every_image_before_iteration_1(folders, tmp_path, capsys, count_steps):
    """A corrupt image used to stop training at a random iteration, and again on every rerun."""
    import shutil
    contents = tmp_path / "contents"
    shutil.copytree(folders / "contents", contents)
    good = sorted(os.listdir(contents))[0]
    data = (contents / good).read_bytes()
    (contents / "cut_short.png").write_bytes(data[:len(data) // 2])
    (contents / "not_an_image.jpg").write_bytes(b"<html>404</html>")
    argv = ["--task", "finetune_decoder", "--max_iter", "50"] + _common(folders, tmp_path / "save")
    argv[argv.index("--content_dir") + 1] = str(contents)
    assert train_style_modules.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "2 of 4 content images" in err
    assert str(contents / "cut_short.png") in err and str(contents / "not_an_image.jpg") in err
    assert count_steps == [] and not (tmp_path / "save").exists()


def test_decoder_training_checks_that_save_dir_is_writable_first(folders, tmp_path, monkeypatch, capsys,
                                                                 count_steps):
    from tests.faults import fail_writes_under
    ro = tmp_path / "ro"
    ro.mkdir()
    fail_writes_under(monkeypatch, ro)
    assert train_style_modules.main(["--task", "finetune_decoder", "--max_iter", "50"]
                                    + _common(folders, ro / "save")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {ro / 'save'}") and "Read-only file system" in err and count_steps == []
