"""All options of both entry points, in one place (names and defaults of the original).

`parse_args(argv)`: run_stylenerf.py; `parse_pretrain_args(argv)`: train_style_modules.py.
Each parses a command line plus an optional `--config` file and checks the values; any
problem is a `ConfigError` (or the parser's OptionError) naming the option.  Options both
share (the device, the time box, the GPU library switches) come from add_common_options.
Environment: STYLENERF_DEVICE is the default of --device (CI and tests set it); nothing
else is read from the environment.
"""
import argparse
import os
import re

import configargparse


class ConfigError(ValueError):
    """A bad option value or a bad config file; the message names which."""


# --style_patch_ref values that read each view's own stylization (kept beside propagated targets)
VIEW_REFS = ("view", "view_std")


def add_vae_options(add):
    """The style VAE's size options (shared with train_style_modules.py)."""
    add("--vae_d", type=int, default=4, help="VAE depth (linear layers per side)")
    add("--vae_w", type=int, default=512, help="VAE hidden width")
    add("--vae_latent", type=int, default=32, help="VAE latent size")
    add("--vae_kl_lambda", type=float, default=0.1, help="VAE KL weight")


def add_common_options(add):
    """What both entry points take: where to run, the time box, the GPU libraries' switches."""
    add("--device", type=str, default=None, choices=["auto", "cpu", "cuda"],
        help="where to run (default: env STYLENERF_DEVICE or auto)")
    add("--time_limit", type=float, default=0,
        help="minutes after which every training loop saves a checkpoint and stops (exit 75; the same "
             "command resumes); 0: no limit")
    add("--cudnn_search", type=int, default=1, choices=[0, 1],
        help="1: time cuDNN's algorithms once per training shape (like cudnn.benchmark); 0: take the "
             "heuristics' choice")
    add("--cublaslt_bgrad", type=str, default="kernel", choices=["kernel", "epilogue"],
        help="where --gemm cublaslt sums the bias gradients: in the ReLU-gradient pass (kernel) or in "
             "the weight-gradient GEMM (epilogue)")


def build_parser():
    p = configargparse.ArgumentParser(
        description="StylizedNeRF in Jittor: NeRF pre-training, decoder consistency fine-tune, "
                    "stylized targets, style training and stylized rendering.",
        config_file_parser_class=configargparse.DefaultConfigFileParser)
    add = p.add_argument
    # paths
    add("--config", is_config_file=True, help="config file path")
    add("--expname", type=str, default="exp", help="experiment name")
    add("--basedir", type=str, default="./logs/", help="where experiment folders are stored")
    add("--datadir", type=str, default="./data/llff/fern", help="scene folder")
    add("--styledir", type=str, default="./style/", help="folder of style images")
    add("--decoder_pth_path", type=str, default="./pretrained/decoder.pth", help="AdaIN decoder weights")
    add("--vgg_pth_path", type=str, default="./pretrained/vgg_normalised.pth", help="normalised VGG-19 weights")
    add("--vae_pth_path", type=str, default="./pretrained/vae.pkl",
        help="style VAE weights (train_style_modules.py --task vae writes pretrained/vae.pkl); trained here if missing")
    add_common_options(add)
    add("--matmul", type=str, default="tf32", choices=["fp32", "tf32", "bf16", "fp16"],
        help="GPU matmul precision (bf16/fp16: tensor-core compute on fp32 data)")
    add("--gemm", type=str, default="cublaslt", choices=["jittor", "cublas", "cublaslt"],
        help="how the NeRF and style MLPs multiply on the GPU: cuBLASLt matmuls with the bias "
             "and ReLU fused in (the default: the fastest on the H200; Jittor's matmul where "
             "cuBLASLt is missing or fails its self-check, and always on the CPU), Jittor's "
             "tuned matmul, or direct cuBLAS calls with a hand-written backward")
    add("--conv", type=str, default="auto", choices=["auto", "cudnn", "gemm"],
        help="how the VGG encoder and decoder convolve on the GPU: cuDNN when it is installed and "
             "passes its check (auto), or a gather + cuBLAS GEMM")
    # data
    add("--dataset_type", type=str, default="llff", choices=["llff"], help="dataset type")
    add("--factor", type=int, default=8, help="LLFF image downscale factor")
    add("--gen_factor", type=float, default=0.2, help="interpolation step between training poses for geometry data (1 = training poses)")
    add("--valid_factor", type=float, default=0.05, help="interpolation step between training poses for the novel-view path")
    add("--llffhold", type=int, default=8, help="hold out every N-th view for testing (0: none)")
    add("--no_ndc", action="store_true", help="do not use normalized device coordinates")
    add("--white_bkgd", action="store_true", help="composite on a white background")
    add("--spherify", action="store_true",
        help="a capture all around an object: centre it and scale the cameras to a unit sphere (needs --no_ndc)")
    add("--render_path_type", type=str, default="interp", choices=["interp", "spiral", "circle"],
        help="novel-view camera path for --render_valid*: between the training views (interp), a "
             "spiral in front of them (forward-facing scenes) or a circle around the object (--spherify)")
    # model
    add("--use_viewdir", action="store_true", help="feed view directions to the NeRF")
    add("--nerf_type", type=str, default="nerf", help="coarse model type")
    add("--nerf_type_fine", type=str, default="nerf", help="fine model type")
    add("--style_type", type=str, default="mlp", choices=["mlp"], help="style module type")
    add("--latent_type", type=str, default="variational", choices=["variational"], help="latent code type")
    add("--sigma_noise_std", type=float, default=1.0, help="std of noise added to raw density during training")
    add("--act_type", type=str, default="relu", choices=["relu"], help="activation")
    add("--netdepth", type=int, default=8, help="layers in the coarse net")
    add("--netwidth", type=int, default=256, help="channels per layer in the coarse net")
    add("--netdepth_fine", type=int, default=8, help="layers in the fine net")
    add("--netwidth_fine", type=int, default=256, help="channels per layer in the fine net")
    add("--style_D", type=int, default=8, help="layers of the style MLP")
    add("--style_W", type=int, default=0, help="channels per layer of the style MLP (0: --netwidth, the original)")
    add("--style_encoding", type=str, default="pe", choices=["pe", "hash"],
        help="what the style MLP sees of a point: its positional encoding (pe, the original), or that and a "
             "multi-resolution hash grid's features there (hash: Instant-NGP's encoding, models/hash_grid.py; "
             "holds pixel-sized strokes that the MLP alone blurs)")
    add("--hash_levels", type=int, default=16, help="--style_encoding hash: grid levels (2 features each)")
    add("--hash_log2_size", type=int, default=19, help="--style_encoding hash: log2 of each level's table rows")
    add("--hash_max_res", type=int, default=2048,
        help="--style_encoding hash: the finest level's cells per axis of the scene's box (the coarsest: 16)")
    add("--hash_per_style", action="store_true",
        help="--style_encoding hash: one grid per style instead of one shared by all (a style's texture gets "
             "a table of its own; the checkpoint grows with the number of styles)")
    add("--hash_lrate", type=float, default=1e-2,
        help="--style_encoding hash: the grid's learning rate (decays as --style_lrate does)")
    add("--embed_freq_coor", type=int, default=10, help="positional-encoding frequencies for xyz")
    add("--embed_freq_dir", type=int, default=4, help="positional-encoding frequencies for view directions")
    add_vae_options(add)
    # training
    add("--batch_size", type=int, default=2048, help="rays per step, NeRF stage")
    add("--batch_size_style", type=int, default=1024, help="rays per step, style stage")
    add("--lrate", type=float, default=5e-4, help="learning rate")
    add("--lrate_decay", type=int, default=100000, help="steps for the learning rate to fall 10x")
    add("--style_lrate", type=float, default=0.0,
        help="learning rate of the style MLP (0: --lrate, the original); decays as --lrate does, from --origin_step")
    add("--style_patch_weight", type=float, default=0.0,
        help="weight of the style stage's texture term: one rendered --style_patch window a step must have "
             "the VGG channel statistics of its target window (pipeline/style_patch.py; 0: MSE only, the original); "
             "how much of the painting the frames carry: larger paints more and keeps less detail")
    add("--style_patch", type=int, default=32, help="side in pixels of that window (at the targets' size)")
    add("--style_patch_every", type=int, default=1,
        help="the texture window on every Nth style step only (its VGG pass is most of a step's time; the "
             "other steps are MSE to the targets only)")
    add("--style_patch_ref", type=str, default="target", choices=["target", "view", "view_std", "style", "nn"],
        help="what the texture term asks of its window: its target window's VGG statistics (target), those "
             "of the same window of the view's own stylization before --target_propagation (view: the "
             "pixels follow the consistent targets, the texture the unpropagated ones), the target window's "
             "channel means with the view's own channel stds (view_std: the colours where the consistent "
             "targets put them, the texture's contrast of the unpropagated ones), the style image's "
             "at --style_size (style: a Gatys-like style loss), or that each of its deepest features be "
             "close to one of the style image's (nn: nearest-neighbour feature matching, as ARF)")
    add("--style_patch_balance", action="store_true",
        help="with --style_patch_ref style and several styles: draw each texture window's style in proportion "
             "to how far the rendered windows of that style lie from its painting (a running mean of their "
             "texture loss) over how far its targets' windows do (measured at the stage's start), instead of "
             "uniformly: the style the field follows least gets the most windows")
    add("--style_samples", type=int, default=0,
        help="style stage: render each step from every target pixel's K heaviest samples of the frozen "
             "density, cached once (pipeline/style_samples.py): the style MLP at K points a ray instead of "
             "the NeRF and the style MLP at every sample (0: the renderer at every step, the original)")
    add("--style_render_samples", type=int, default=0,
        help="render the stylized NeRF (style training with the renderer, videos, evaluate.py, the mimic "
             "step) from each ray's K heaviest samples of the frozen density, weights rescaled to the ray's "
             "opacity, as the sample cache (--style_samples) trains it; 1: one colour a ray (0: every sample)")
    add("--style_point", type=str, default="heaviest", choices=["heaviest", "surface"],
        help="where a one-sample cache or render (--style_samples 1, --style_render_samples 1) colours a ray: "
             "its heaviest sample, or its expected depth (surface: smooth across pixels and views)")
    add("--surface_jitter", type=float, default=0.0, help="--style_point surface: jitter each cached point along its ray "
        "in training by up to this many times the ray's depth std under the fine weights (0: its sample's interval)")
    add("--target_factor", type=int, default=1,
        help="the stylized targets and the style stage's rays at the geometry views' size divided by this "
             "(1: full size, the original). The decoder's strokes have a fixed size in pixels: make the "
             "targets at the size the stylized NeRF is rendered at (--render_factor, evaluate.py's --eval_factor)")
    add("--target_propagation", action=argparse.BooleanOptionalAction, default=None,
        help="consistent targets: each view's target takes, where the views made before it see the same "
             "surface point, their strokes (warped with the geometry, the central camera first), and keeps "
             "its own stylization only elsewhere (pipeline/target_propagation.py; --no-target_propagation "
             "turns off a config's setting; off: every view "
             "stylized on its own, the original)")
    add("--propagation_thresh", type=float, default=0.2,
        help="--target_propagation: the largest distance (world units) between a view's surface point and "
             "the earlier view's point at its projection for that point to count as seen there")
    add("--propagation_colour_thresh", type=float, default=0.0,
        help="--target_propagation: a pixel is taken only where the earlier view's photoreal render at the "
             "projection differs from its own by less than this (largest channel, colours in [0, 1]); "
             "0: no colour test")
    add("--propagation_edge_thresh", type=float, default=0.0,
        help="--target_propagation: no pixel is taken that lies on a depth edge in either view (its depth "
             "varies over its 3x3 neighbourhood by more than this times itself); 0: no edge test")
    add("--propagation_resample", type=str, default="chained", choices=["chained", "once"],
        help="--target_propagation: chained: a taken pixel is read from the earlier view's target as made "
             "(a pixel that view had taken is resampled again); once: from the own stylization of the view "
             "that drew it, at its surface point's projection there (one resampling)")
    add("--propagation_interp", type=str, default="cubic", choices=["cubic", "lanczos"],
        help="--target_propagation: the kernel that reads the earlier views (lanczos: 8x8, softens fine "
             "strokes less)")
    add("--chunk", type=int, default=32768, help="rays per rendering chunk")
    add("--N_samples", type=int, default=64, help="coarse samples per ray")
    add("--N_samples_fine", type=int, default=64, help="extra fine samples per ray")
    add("--perturb", type=float, default=1.0, help="stratified jitter during training (0: none)")
    add("--fine_sampling", type=str, default="det", choices=["det", "random"],
        help="importance samples during training: the inverse CDF at fixed quantiles (det: the original "
             "StylizedNeRF) or at random ones (nerf-pytorch with --perturb); renders always use det")
    add("--origin_step", type=int, default=250000, help="NeRF pre-training steps")
    add("--total_step", type=int, default=5000001, help="last step of style training")
    add("--decoder_step", type=int, default=3500000,
        help="style step (counted on from --origin_step, like the style stage's steps) from which the "
             "2D<-3D mimic step trains the decoder towards the style NeRF's renders and makes the "
             "stylized targets again (the original's meaning and default; pipeline/mimic.py)")
    add("--mimic_every", type=int, default=50,
        help="style steps between two mimic steps from --decoder_step on (0: no mimic step)")
    add("--mimic_views", type=int, default=1,
        help="geometry views per mimic step: rendered, learnt by the decoder, and their targets made again")
    add("--finetune_decoder_steps", type=int, default=1000,
        help="iterations of the decoder consistency fine-tune (stage 3; the original's fixed 1000)")
    add("--decoder_lrate", type=float, default=1e-4, help="decoder fine-tune learning rate (decays as 1/(1+5e-5 it))")
    add("--finetune_size", type=int, default=512, help="longer image side during the decoder fine-tune")
    add("--geo_thresh", type=float, default=0.05, help="geometry mask: max distance of a warped point to the view's own point")
    add("--i_weights_decoder", type=int, default=200, help="iterations between decoder fine-tune checkpoints")
    add("--style_size", type=int, default=512, help="short side of style images for the stylized targets")
    add("--vae_style_dir", type=str, default="./all_styles/", help="styles to train a VAE on when --vae_pth_path is missing")
    add("--vae_steps", type=int, default=2000, help="steps of that VAE training")
    add("--seed", type=int, default=0, help="random seed")
    add("--no_reload", action="store_true", help="do not resume from checkpoints")
    add("--warm_start", type=str, default=None,
        help="NeRF weights to start from when the experiment folder has no NeRF checkpoint: the original "
             "release's <step>.tar (as jt.save wrote it) or this project's nerf_<step>.pkl; training "
             "resumes at its step")
    # loss weights
    add("--rgb_loss_lambda", type=float, default=1.0)
    add("--style_loss_lambda", type=float, default=1.0)
    add("--content_loss_lambda", type=float, default=1.0)
    add("--logp_loss_lambda", type=float, default=0.1)
    add("--logp_loss_decay", type=float, default=1.0)
    add("--rgb_loss_lambda_2d", type=float, default=10.0,
        help="weight of the 2D<-3D mimic loss MSE(decoder output, style NeRF render) from --decoder_step on")
    # logging
    add("--i_print", type=int, default=100, help="steps between log lines")
    add("--i_weights", type=int, default=5000, help="steps between checkpoints")
    add("--ckp_num", type=int, default=3, help="checkpoints kept")
    # rendering
    add("--render_train", action="store_true", help="render training/held-out views (photoreal) and exit")
    add("--render_valid", action="store_true", help="render the novel-view path (photoreal) and exit")
    add("--render_train_style", action="store_true", help="render training views, stylized, and exit")
    add("--render_valid_style", action="store_true", help="render the novel-view path, stylized, and exit")
    add("--style", type=str, default=None, help="use only these styles: an index or a file name, or several separated by commas")
    add("--style_interp", action="store_true",
        help="with --render_valid_style and --style A,B[,C...]: one video whose style moves from A to "
             "B (to C ...) along the novel-view path (the latent code interpolated between the styles' means)")
    add("--sigma_scale", type=float, default=1.0, help="scale of latent deviation from the style mean")
    # fast by default since its CUDA kernels were measured on a GPU (one H200, 2026-12-05, b392d78:
    # >= 66.4 dB photoreal and >= 91.4 dB stylized against exact, 1.39x and 1.77x the frames/s)
    add("--render_mode", type=str, default="fast", choices=["fast", "exact"],
        help="novel-view and stylized renders (--render_valid, --render_train_style, --render_valid_style, "
             "evaluate.py's stylized path): fast evaluates the MLPs only in cells of the NeRF's occupancy "
             "grid that hold density (built once per checkpoint, cached as occupancy_<step>.npz) and in "
             "front of where a ray becomes opaque - the same images within 40 dB PSNR; exact evaluates "
             "every sample (training, geometry data and held-out PSNR always do)")
    add("--render_factor", type=int, default=1, help="extra downscale for rendering")
    add("--fps", type=int, default=30, help="video frames per second")
    # evaluation (evaluate.py)
    add("--eval_factor", type=int, default=2, help="extra downscale of path frames for the consistency metric")
    add("--eval_k_short", type=int, default=1, help="frame offset of the short-range consistency")
    add("--eval_k_long", type=int, default=7, help="frame offset of the long-range consistency")
    add("--eval_frames", type=int, default=0, help="use only the first N path frames (0: all)")
    add("--eval_name", type=str, default="eval", help="the report's folder in the experiment folder (another "
        "name keeps an earlier report, e.g. --eval_name eval_k32 --style_render_samples 32)")
    add_original_only_options(add)
    from core.cli import one_line_errors
    return one_line_errors(p)


def add_original_only_options(add):
    """Options of the original release that do nothing here (nor, for most, there): accepted so
    that its configs and command lines run; docs/ORIGINAL_COMPAT.md says what each did there."""
    noop = "accepted for compatibility with the original; no effect here (docs/ORIGINAL_COMPAT.md)"
    add("--half_res", action="store_true", help=noop)
    add("--num_workers", type=int, default=0, help=noop)
    add("--store_rays", type=int, default=1, help=noop)
    add("--sample_type", type=str, default="uniform", choices=["uniform"], help=noop)
    add("--siren_sigma_mul", type=float, default=20.0, help=noop)
    add("--lambda_u", type=float, default=0.01, help=noop)
    add("--style_feature_dim", type=int, default=1024, help=noop)
    add("--steps_per_opt", type=int, default=1, help=noop)
    add("--steps_patch", type=int, default=-1, help=noop)
    add("--i_video", type=int, default=5000000, help=noop)
    add("--TT_far", type=float, default=8.0, help=noop)
    add("--pixel_alignment", action="store_true",
        help="not supported: rays pass through pixel corners, the original's default")


_POSITIVE = ["factor", "netdepth", "netwidth", "netdepth_fine", "netwidth_fine", "style_D", "batch_size",
             "batch_size_style", "chunk", "N_samples", "i_print", "i_weights", "ckp_num", "vae_d", "vae_w",
             "vae_latent", "render_factor", "fps", "finetune_size", "i_weights_decoder", "style_size",
             "eval_factor", "eval_k_short", "eval_k_long", "mimic_views", "target_factor", "style_patch",
             "style_patch_every",
             "hash_levels", "hash_lrate", "gen_factor", "valid_factor"]
_NON_NEGATIVE = ["N_samples_fine", "origin_step", "total_step", "decoder_step", "finetune_decoder_steps", "mimic_every",
                 "embed_freq_coor", "embed_freq_dir", "lrate_decay", "llffhold", "sigma_noise_std", "perturb",
                 "vae_steps", "geo_thresh", "eval_frames",
                 "style_W", "style_lrate", "style_patch_weight", "style_samples", "propagation_thresh",
                 "propagation_colour_thresh", "propagation_edge_thresh",
                 "style_render_samples", "surface_jitter"]


def check_args(args):
    """Validate values that argparse cannot; raise ConfigError naming the option."""
    for name in _POSITIVE:
        if not getattr(args, name) > 0:  # NaN too
            raise ConfigError(f"--{name} must be > 0, got {getattr(args, name)}")
    for name in _NON_NEGATIVE:
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(args, name)}")
    for name in ("style_samples", "style_render_samples"):
        if getattr(args, name) > 0 and args.N_samples_fine == 0:
            raise ConfigError(f"--{name} {getattr(args, name)}: the heaviest samples come from the fine level "
                              f"(--N_samples_fine > 0, got 0); expected --{name} 0 without it")
    if args.surface_jitter > 0 and not (args.style_samples == 1 and args.style_point == "surface"):
        raise ConfigError(f"--surface_jitter {args.surface_jitter} moves the points of a one-point cache: "
                          f"expected --style_samples 1 --style_point surface with it")
    n_all = args.N_samples + args.N_samples_fine
    if args.style_patch_ref != "target" and args.style_patch_weight == 0:
        raise ConfigError(f"--style_patch_ref {args.style_patch_ref} acts through the texture term, which is off: "
                          f"expected --style_patch_weight > 0 with it")
    if args.style_patch_balance and (args.style_patch_weight == 0 or args.style_patch_ref != "style"):
        raise ConfigError("--style_patch_balance shares the texture windows by the style images' statistics: "
                          "expected --style_patch_weight > 0 and --style_patch_ref style with it")
    # None: not asked for. False: turned off by --no-target_propagation, which leaves a config's
    # thresholds inert instead of an error
    turned_off = args.target_propagation is False
    args.target_propagation = bool(args.target_propagation)
    if args.style_patch_ref in VIEW_REFS and args.style_patch_weight > 0 and not args.target_propagation:
        raise ConfigError(f"--style_patch_ref {args.style_patch_ref} reads each view's own stylization beside the "
                          f"propagated targets: expected --target_propagation with it (without it that is "
                          f"--style_patch_ref target)")
    for name in ("propagation_colour_thresh", "propagation_edge_thresh"):
        if getattr(args, name) > 0 and not args.target_propagation and not turned_off:
            raise ConfigError(f"--{name} {getattr(args, name)} tests which pixels propagated targets take: "
                              f"expected --target_propagation with it")
    for name, default in (("propagation_resample", "chained"), ("propagation_interp", "cubic")):
        if getattr(args, name) != default and not args.target_propagation and not turned_off:
            raise ConfigError(f"--{name} {getattr(args, name)} says how propagated targets are read: "
                              f"expected --target_propagation with it")
    if args.target_propagation and args.mimic_every > 0 and args.decoder_step <= args.total_step:
        raise ConfigError(f"--target_propagation with the mimic step (--decoder_step {args.decoder_step} <= "
                          f"--total_step {args.total_step}) is not supported: the mimic step remakes targets "
                          f"view by view; expected --decoder_step > --total_step or --mimic_every 0 with it")
    if args.style_samples > n_all:
        # a config's K with fewer samples asked on the command line (a small test run): keeping
        # every sample is the renderer's own result, so lower K and say so
        print(f"--style_samples {args.style_samples} -> {n_all}: a ray has only {n_all} samples "
              f"(--N_samples {args.N_samples} + --N_samples_fine {args.N_samples_fine}), all kept", flush=True)
        args.style_samples = n_all
    k_max = max(args.eval_k_short, args.eval_k_long)
    if args.eval_frames and args.eval_frames <= k_max:
        raise ConfigError(f"--eval_frames {args.eval_frames}: the consistency measure warps path frame t onto t+k, "
                          f"and k = {k_max} (--eval_k_short / --eval_k_long) needs at least {k_max + 1} frames; "
                          f"expected --eval_frames >= {k_max + 1} (or 0: all) or a smaller --eval_k_long")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.eval_name):
        raise ConfigError(f"--eval_name {args.eval_name!r}: expected a folder name (letters, digits, _ . -), "
                          f"made in the experiment folder")
    if not args.lrate > 0:
        raise ConfigError(f"--lrate must be > 0, got {args.lrate}")
    if args.netdepth < 5 or args.netdepth_fine < 5:
        raise ConfigError("--netdepth/--netdepth_fine must be >= 5 (the skip connection enters before layer 5)")
    if args.style_encoding == "hash" and not 4 <= args.hash_log2_size <= 26:
        raise ConfigError(f"--hash_log2_size must be in 4..26, got {args.hash_log2_size}")
    if args.hash_per_style and args.style_encoding != "hash":
        raise ConfigError("--hash_per_style gives each style a hash grid of its own: it needs --style_encoding hash")
    if args.style_encoding == "hash" and args.hash_max_res < 16:
        raise ConfigError(f"--hash_max_res must be >= 16 (the coarsest level's), got {args.hash_max_res}")
    if args.style_D < 4:
        raise ConfigError("--style_D must be >= 4 (position re-enters before layer 4)")
    modes = [m for m in ("render_train", "render_valid", "render_train_style", "render_valid_style")
             if getattr(args, m)]
    if len(modes) > 1:
        raise ConfigError("choose one render mode, got: " + ", ".join("--" + m for m in modes))
    if args.style_interp and not (args.render_valid_style and args.style and "," in str(args.style)):
        raise ConfigError("--style_interp needs --render_valid_style and --style with two or more styles "
                          "(e.g. --style la_muse,sketch)")
    if args.pixel_alignment:
        raise ConfigError("--pixel_alignment is not supported: rays pass through pixel corners "
                          "(the original's default, without --pixel_alignment)")
    if args.spherify and not args.no_ndc:
        raise ConfigError("--spherify needs --no_ndc (NDC is for forward-facing scenes)")
    return args


def _check_config_file(argv):
    for i, a in enumerate(argv):  # check the config file first: configargparse would exit
        path = a.split("=", 1)[1] if a.startswith("--config=") else (
            argv[i + 1] if a == "--config" and i + 1 < len(argv) else None)
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"--config {path}: no such file")


def parse_args(argv=None):
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _check_config_file(argv)
    # configargparse reports unknown keys in a config file as unknown arguments:
    # turn argparse's SystemExit into an error that names them.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError("unknown option(s): " + " ".join(unknown)
                          + (f" (from the command line or {args.config})" if args.config else ""))
    return check_args(args)


def build_pretrain_parser():
    """train_style_modules.py: AdaIN decoder and style-VAE pre-training, stylizing one image."""
    p = configargparse.ArgumentParser(description="Train or use the 2D style modules",
                                      config_file_parser_class=configargparse.DefaultConfigFileParser)
    add = p.add_argument
    add("--config", is_config_file=True, help="config file path")
    add("--task", type=str, default="vae", choices=["finetune_decoder", "vae", "stylize"],
        help="what to do (default vae, as the original)")
    add("--content_dir", type=str, default="./all_contents/",
        help="content images (decoder training); several folders separated by commas")
    add("--style_dir", type=str, default="./all_styles/", help="style images (decoder and VAE training)")
    add("--vgg", type=str, default="./pretrained/vgg_normalised.pth",
        help="normalised VGG-19 weights (the relu3_1 file beside it is used if this one is missing)")
    add("--decoder", type=str, default="./pretrained/decoder.pth",
        help="decoder weights: initialisation for training ('none': from scratch), required for stylize")
    add("--save_dir", type=str, default="./pretrained/", help="checkpoints, samples and final weights")
    add("--lr", type=float, default=1e-4, help="learning rate")
    add("--lr_decay", type=float, default=5e-5, help="lr = lr / (1 + lr_decay * iteration)")
    add("--max_iter", type=int, default=160000, help="training iterations")
    add("--batch_size", type=int, default=8, help="images (decoder) or styles (VAE) per iteration")
    add("--style_weight", type=float, default=2.0, help="style loss weight")
    add("--content_weight", type=float, default=1.0, help="content loss weight")
    add("--gram_weight", type=float, default=0.0,
        help="weight of a Gram-matrix style term beside AdaIN's mean/std one (0: AdaIN's loss alone)")
    add("--temporal_weight", type=float, default=50.0, help="accepted for compatibility (video option; unused)")
    add("--save_model_interval", type=int, default=200, help="checkpoint (and sample grid) every N iterations")
    add("--keep", "--ckp_num", dest="keep", type=int, default=3, help="checkpoints kept (--ckp_num: the original's name)")
    add("--image_size", type=int, default=512, help="images resized so their short side is this (0: keep)")
    add("--crop_size", type=int, default=256, help="random crop size for decoder training")
    add("--n_threads", type=int, default=16, help="accepted for compatibility (ignored)")
    add("--seed", type=int, default=0, help="random seed")
    add_vae_options(add)
    add("--content", "--content_image", dest="content", type=str, default=None, help="stylize: content image")
    add("--style_image", type=str, default=None, help="stylize: style image")
    add("--style", action=_Renamed, nargs="?", help=configargparse.SUPPRESS)
    add("--output", type=str, default=None, help="stylize: output PNG")
    add("--alpha", type=float, default=1.0, help="stylize: style strength in [0, 1]")
    add_common_options(add)
    noop = "accepted for compatibility with the original; no effect here (docs/ORIGINAL_COMPAT.md)"
    add("--log_dir", type=str, default="./logs/stylenet/", help=noop)
    add("--print_interval", type=int, default=20, help=noop)
    add("--nerf_content_dir", type=str, default="./nerf_gen_data2/", help=noop)
    add("--no_ndc", action="store_true", help=noop)
    add("--no_reload", action="store_true", help=noop)
    from core.cli import one_line_errors
    return one_line_errors(p)


class _Renamed(configargparse.Action):
    """--style means a style selection in run_stylenerf.py; the stylize task's image is --style_image."""

    def __call__(self, parser, namespace, values, option_string=None):
        raise ConfigError("--style is run_stylenerf.py's style selection; train_style_modules.py --task "
                          "stylize takes the style image as --style_image")


def parse_pretrain_args(argv=None):
    """train_style_modules.py's options (values checked by pipeline/pretrain_2d.check_args)."""
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    _check_config_file(argv)
    return build_pretrain_parser().parse_args(argv)
