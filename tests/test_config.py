"""core/config.py and train_style_modules.py's parser: the original's option names and meanings."""
import os

import pytest

import train_style_modules
from core.config import ConfigError, build_parser, parse_args, parse_pretrain_args

ORIGINAL_FERN = """expname = fern_style
basedir = ./logs
datadir = ./data/fern
styledir = ./small_style/
dataset_type = llff
factor = 4
nerf_type = style_nerf
nerf_type_fine = style_nerf
style_type = mlp
latent_type = variational
batch_size = 2048
batch_size_style = 1024
N_samples = 64
N_samples_fine = 64
use_viewdir
sigma_noise_std = 1e0
origin_step = 120001
total_step = 5000001
style_D = 8
valid_factor = 3
gen_factor = 1
"""


def test_decoder_step_is_the_mimic_start_and_the_finetune_has_its_own_name():
    args = parse_args([])
    assert args.decoder_step == 3500000 and args.rgb_loss_lambda_2d == 10.0  # the original's defaults
    assert args.finetune_decoder_steps == 1000
    args = parse_args(["--decoder_step", "7", "--finetune_decoder_steps", "12"])
    assert (args.decoder_step, args.finetune_decoder_steps) == (7, 12)
    with pytest.raises(ConfigError, match="--finetune_decoder_steps must be >= 0"):
        parse_args(["--finetune_decoder_steps", "-1"])


def test_surface_jitter_needs_the_one_point_surface_cache():
    args = parse_args(["--style_samples", "1", "--style_point", "surface", "--surface_jitter", "2"])
    assert args.surface_jitter == 2.0
    with pytest.raises(ConfigError, match="--surface_jitter 2.0 moves the points of a one-point cache"):
        parse_args(["--style_samples", "4", "--style_point", "surface", "--surface_jitter", "2"])
    with pytest.raises(ConfigError, match="--surface_jitter must be >= 0"):
        parse_args(["--style_samples", "1", "--style_point", "surface", "--surface_jitter", "-1"])


def test_the_projects_configs_set_the_finetune_length_by_its_new_name():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = parse_args(["--config", os.path.join(root, "configs", "fern_quick.txt")])
    # the shipped decoder as it is: the consistency fine-tune costs its style (README, "Style strength")
    assert args.finetune_decoder_steps == 0 and args.decoder_step == 3500000
    assert (args.style_encoding, args.hash_log2_size) == ("hash", 21)  # README, "Style strength"
    # the texture term against the style image's statistics over 256-pixel windows on every third
    # step, 17,000 style steps
    assert (args.style_patch_weight, args.style_patch_every, args.style_patch, args.style_patch_ref) == \
        (1.0, 3, 256, "style")
    assert args.total_step - args.origin_step == 17000
    # one style point a ray at its expected depth, trained and rendered there (README, "Style strength")
    assert (args.style_samples, args.style_render_samples, args.style_point) == (1, 1, "surface")
    # consistent targets with the depth-edge test (README, "Style strength")
    assert args.target_propagation and args.propagation_edge_thresh == 0.2
    # the CPU config too uses the shipped decoder as it is; the paper's config fine-tunes it
    cpu = parse_args(["--config", os.path.join(root, "configs", "fern_cpu.txt")])
    assert cpu.finetune_decoder_steps == 0 and cpu.style_patch_every == 3
    paper = parse_args(["--config", os.path.join(root, "configs", "fern.txt")])
    assert paper.finetune_decoder_steps == 1000


def test_the_originals_config_and_its_other_options_are_accepted(tmp_path):
    cfg = tmp_path / "fern.txt"
    cfg.write_text(ORIGINAL_FERN)
    args = parse_args(["--config", str(cfg), "--num_workers", "4", "--half_res", "--store_rays", "0",
                       "--lambda_u", "0.5", "--TT_far", "4", "--i_video", "10", "--steps_per_opt", "2",
                       "--steps_patch", "3", "--style_feature_dim", "512", "--siren_sigma_mul", "1",
                       "--sample_type", "uniform"])
    assert (args.factor, args.origin_step, args.total_step, args.gen_factor) == (4, 120001, 5000001, 1)
    assert args.use_viewdir and args.nerf_type == "style_nerf" and args.num_workers == 4
    with pytest.raises(ConfigError, match="--pixel_alignment is not supported"):
        parse_args(["--pixel_alignment"])
    with pytest.raises(ValueError):  # OptionError: one line, no usage dump  # argparse: only the original's one sampler
        build_parser().parse_args(["--sample_type", "cone"])


def test_warm_start_option():
    assert parse_args([]).warm_start is None
    assert parse_args(["--warm_start", "logs/x/120001.tar"]).warm_start == "logs/x/120001.tar"


def test_train_style_modules_task_defaults_to_vae_and_takes_the_originals_names():
    args = parse_pretrain_args([])
    assert args.task == "vae"
    args = parse_pretrain_args(["--ckp_num", "5", "--log_dir", "x", "--print_interval",
                                                          "7", "--no_reload", "--no_ndc", "--nerf_content_dir", "y"])
    assert args.keep == 5


def test_one_options_module_for_both_entry_points():
    from core.config import ConfigError, parse_pretrain_args
    a = parse_pretrain_args(["--task", "stylize", "--content", "c.png", "--style_image", "s.jpg", "--output", "o.png",
                             "--time_limit", "5", "--cudnn_search", "0"])
    assert (a.content, a.style_image, a.output, a.time_limit, a.cudnn_search) == ("c.png", "s.jpg", "o.png", 5.0, 0)
    # --style means a style selection only (run_stylenerf.py); the old spelling says where to go
    with pytest.raises(ConfigError, match="--style_image"):
        parse_pretrain_args(["--task", "stylize", "--style", "s.jpg"])
    assert parse_args(["--style", "la_muse"]).style == "la_muse"
    shared = ("device", "time_limit", "cudnn_search", "cublaslt_bgrad")
    r, p = parse_args([]), parse_pretrain_args([])
    assert all(getattr(r, k) == getattr(p, k) for k in shared)


def test_the_former_environment_switches_are_options(monkeypatch):
    monkeypatch.setenv("STYLENERF_CUDNN_SEARCH", "0")
    monkeypatch.setenv("STYLENERF_CUBLASLT_BGRAD", "epilogue")
    a = parse_args([])
    assert (a.cudnn_search, a.cublaslt_bgrad) == (1, "kernel")  # the environment is not read


def test_style_samples_above_a_rays_samples_keep_them_all_and_say_so(capsys):
    args = parse_args(["--style_samples", "32", "--N_samples", "4", "--N_samples_fine", "4"])
    assert args.style_samples == 8
    assert "--style_samples 32 -> 8: a ray has only 8 samples" in capsys.readouterr().out
    assert parse_args(["--style_samples", "32"]).style_samples == 32  # 64 + 64 samples: kept as asked
    with pytest.raises(ConfigError, match="--style_samples 8: the heaviest samples come from the fine level"):
        parse_args(["--style_samples", "8", "--N_samples_fine", "0"])


def test_a_texture_reference_without_the_texture_term_is_refused():
    with pytest.raises(ConfigError, match="--style_patch_ref nn acts through the texture term, which is off"):
        parse_args(["--style_patch_ref", "nn"])
    assert parse_args(["--style_patch_ref", "nn", "--style_patch_weight", "0.1"]).style_patch_ref == "nn"
    assert parse_args(["--style_patch_ref", "target"]).style_patch_weight == 0  # the default pair
    with pytest.raises(ConfigError, match="--style_patch_balance shares the texture windows .* expected "
                                          "--style_patch_weight > 0 and --style_patch_ref style"):
        parse_args(["--style_patch_balance", "--style_patch_weight", "0.1"])  # ref target
    assert parse_args(["--style_patch_balance", "--style_patch_weight", "0.1", "--style_patch_ref",
                       "style"]).style_patch_balance
    # view: the views' own stylizations exist beside propagated targets only
    with pytest.raises(ConfigError, match="--style_patch_ref view reads each view's own stylization .* "
                                          "expected --target_propagation"):
        parse_args(["--style_patch_ref", "view", "--style_patch_weight", "0.1"])
    assert parse_args(["--style_patch_ref", "view", "--style_patch_weight", "0.1",
                       "--target_propagation", "--mimic_every", "0"]).style_patch_ref == "view"
    with pytest.raises(ConfigError, match="--style_patch_ref view_std reads each view's own stylization .* "
                                          "expected --target_propagation"):
        parse_args(["--style_patch_ref", "view_std", "--style_patch_weight", "0.1"])
    assert parse_args(["--style_patch_ref", "view_std", "--style_patch_weight", "0.1",
                       "--target_propagation", "--mimic_every", "0"]).style_patch_ref == "view_std"


def test_target_propagation_is_off_by_default_and_refuses_the_mimic_step():
    args = parse_args([])
    assert not args.target_propagation and args.propagation_thresh == 0.2
    assert parse_args(["--target_propagation", "--total_step", "35000"]).target_propagation
    # the original's defaults start the mimic step at 3,500,000 of 5,000,001 steps
    with pytest.raises(ConfigError, match="--target_propagation with the mimic step"):
        parse_args(["--target_propagation"])
    with pytest.raises(ConfigError, match="--target_propagation with the mimic step"):
        parse_args(["--target_propagation", "--decoder_step", "10", "--total_step", "20"])
    assert parse_args(["--target_propagation", "--decoder_step", "10", "--total_step", "20",
                       "--mimic_every", "0"]).target_propagation
    with pytest.raises(ConfigError, match="--propagation_thresh must be >= 0"):
        parse_args(["--propagation_thresh", "-1"])


def test_a_configs_target_propagation_is_turned_off_on_the_command_line(tmp_path):
    cfg = tmp_path / "prop.txt"
    cfg.write_text("target_propagation = True\npropagation_edge_thresh = 0.2\ntotal_step = 35000\n")
    args = parse_args(["--config", str(cfg)])
    assert args.target_propagation is True and args.propagation_edge_thresh == 0.2
    # off: the config's threshold stays inert instead of an error
    args = parse_args(["--config", str(cfg), "--no-target_propagation"])
    assert args.target_propagation is False and args.propagation_edge_thresh == 0.2
    # a threshold without propagation ever asked for is still a mistake named
    with pytest.raises(ConfigError, match="--propagation_edge_thresh 0.2 tests which pixels"):
        parse_args(["--propagation_edge_thresh", "0.2"])
    assert parse_args([]).target_propagation is False  # a bool, never None, after the checks


def test_propagation_reading_options_need_propagation_and_name_their_choices():
    args = parse_args(["--target_propagation", "--total_step", "35000", "--propagation_resample", "once",
                       "--propagation_interp", "lanczos"])
    assert (args.propagation_resample, args.propagation_interp) == ("once", "lanczos")
    with pytest.raises(ConfigError, match="--propagation_resample once says how propagated targets are read"):
        parse_args(["--propagation_resample", "once"])
    with pytest.raises(ConfigError, match="--propagation_interp lanczos says how"):
        parse_args(["--propagation_interp", "lanczos"])


def test_style_render_samples_shape_every_stylized_render_and_need_the_fine_level():
    from render.options import RenderOptions
    args = parse_args([])
    assert args.style_render_samples == 0 and RenderOptions().for_style(args).top_k == 0
    args = parse_args(["--style_render_samples", "1"])
    assert RenderOptions(n_samples=8).for_style(args) == RenderOptions(n_samples=8, top_k=1)
    with pytest.raises(ConfigError, match="--style_render_samples 2: the heaviest samples come from the fine level"):
        parse_args(["--style_render_samples", "2", "--N_samples_fine", "0"])
    with pytest.raises(ConfigError, match="--style_render_samples must be >= 0"):
        parse_args(["--style_render_samples", "-1"])
    args = parse_args(["--style_render_samples", "1", "--style_point", "surface"])
    assert RenderOptions().for_style(args) == RenderOptions(top_k=1, surface=True)
    # more samples than one: the point option does not apply (a config's surface, more samples asked)
    args = parse_args(["--style_render_samples", "4", "--style_point", "surface"])
    assert RenderOptions().for_style(args) == RenderOptions(top_k=4)


def test_hash_encoding_options_default_to_the_position_encoding_and_are_checked():
    args = parse_args([])
    assert args.style_encoding == "pe"  # the original's style MLP
    args = parse_args(["--style_encoding", "hash"])
    assert (args.hash_levels, args.hash_log2_size, args.hash_max_res, args.hash_lrate) == (16, 19, 2048, 1e-2)
    with pytest.raises(ConfigError, match="--hash_log2_size must be in 4..26, got 30"):
        parse_args(["--style_encoding", "hash", "--hash_log2_size", "30"])
    with pytest.raises(ConfigError, match="--hash_max_res must be >= 16"):
        parse_args(["--style_encoding", "hash", "--hash_max_res", "8"])
    with pytest.raises(ConfigError, match="--hash_lrate must be > 0"):
        parse_args(["--hash_lrate", "0"])
    assert not args.hash_per_style and parse_args(["--style_encoding", "hash", "--hash_per_style"]).hash_per_style
    with pytest.raises(ConfigError, match="--hash_per_style .* needs --style_encoding hash"):
        parse_args(["--hash_per_style"])
    from core.cli import OptionError
    with pytest.raises(OptionError, match="--style_encoding: invalid choice: 'grid'"):
        parse_args(["--style_encoding", "grid"])


def test_too_few_evaluation_frames_for_the_frame_gap_are_refused_up_front():
    with pytest.raises(ConfigError, match=r"--eval_frames 6: .* k = 7 .* needs at least 8 frames"):
        parse_args(["--eval_frames", "6"])
    with pytest.raises(ConfigError, match="--eval_frames 3"):
        parse_args(["--eval_frames", "3", "--eval_k_long", "2", "--eval_k_short", "3"])
    assert parse_args(["--eval_frames", "6", "--eval_k_long", "5"]).eval_frames == 6
    assert parse_args(["--eval_frames", "0"]).eval_frames == 0  # all frames: checked against the path


def test_propagation_colour_thresh_needs_target_propagation():
    args = parse_args(["--target_propagation", "--mimic_every", "0", "--propagation_colour_thresh", "0.1"])
    assert args.propagation_colour_thresh == 0.1
    with pytest.raises(ConfigError, match="--propagation_colour_thresh 0.1 tests which pixels propagated targets take"):
        parse_args(["--propagation_colour_thresh", "0.1"])
    with pytest.raises(ConfigError, match="--propagation_edge_thresh 0.1 tests which pixels propagated targets take"):
        parse_args(["--propagation_edge_thresh", "0.1"])
    with pytest.raises(ConfigError, match="propagation_colour_thresh"):
        parse_args(["--target_propagation", "--mimic_every", "0", "--propagation_colour_thresh", "-1"])
