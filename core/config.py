"""All options of run_stylenerf.py, in one place (names and defaults of the original).

`parse_args(argv)` parses a command line plus an optional `--config` file and
checks the values; any problem is a `ConfigError` naming the option.
"""
import os

import configargparse


class ConfigError(ValueError):
    """A bad option value or a bad config file; the message names which."""


def add_vae_options(add):
    """The style VAE's size options (shared with train_style_modules.py)."""
    add("--vae_d", type=int, default=4, help="VAE depth (linear layers per side)")
    add("--vae_w", type=int, default=512, help="VAE hidden width")
    add("--vae_latent", type=int, default=32, help="VAE latent size")
    add("--vae_kl_lambda", type=float, default=0.1, help="VAE KL weight")


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
    add("--device", type=str, default=None, choices=["auto", "cpu", "cuda"],
        help="where to run (default: env STYLENERF_DEVICE or auto)")
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
    add("--embed_freq_coor", type=int, default=10, help="positional-encoding frequencies for xyz")
    add("--embed_freq_dir", type=int, default=4, help="positional-encoding frequencies for view directions")
    add_vae_options(add)
    # training
    add("--batch_size", type=int, default=2048, help="rays per step, NeRF stage")
    add("--batch_size_style", type=int, default=1024, help="rays per step, style stage")
    add("--lrate", type=float, default=5e-4, help="learning rate")
    add("--lrate_decay", type=int, default=100000, help="steps for the learning rate to fall 10x")
    add("--chunk", type=int, default=32768, help="rays per rendering chunk")
    add("--N_samples", type=int, default=64, help="coarse samples per ray")
    add("--N_samples_fine", type=int, default=64, help="extra fine samples per ray")
    add("--perturb", type=float, default=1.0, help="stratified jitter during training (0: none)")
    add("--fine_sampling", type=str, default="det", choices=["det", "random"],
        help="importance samples during training: the inverse CDF at fixed quantiles (det: the original "
             "StylizedNeRF) or at random ones (nerf-pytorch with --perturb); renders always use det")
    add("--origin_step", type=int, default=250000, help="NeRF pre-training steps")
    add("--total_step", type=int, default=5000001, help="last step of style training")
    add("--decoder_step", type=int, default=1000, help="decoder consistency fine-tune iterations")
    add("--decoder_lrate", type=float, default=1e-4, help="decoder fine-tune learning rate (decays as 1/(1+5e-5 it))")
    add("--finetune_size", type=int, default=512, help="longer image side during the decoder fine-tune")
    add("--geo_thresh", type=float, default=0.05, help="geometry mask: max distance of a warped point to the view's own point")
    add("--i_weights_decoder", type=int, default=200, help="iterations between decoder fine-tune checkpoints")
    add("--style_size", type=int, default=512, help="short side of style images for the stylized targets")
    add("--vae_style_dir", type=str, default="./all_styles/", help="styles to train a VAE on when --vae_pth_path is missing")
    add("--vae_steps", type=int, default=2000, help="steps of that VAE training")
    add("--seed", type=int, default=0, help="random seed")
    add("--no_reload", action="store_true", help="do not resume from checkpoints")
    # loss weights
    add("--rgb_loss_lambda", type=float, default=1.0)
    add("--style_loss_lambda", type=float, default=1.0)
    add("--content_loss_lambda", type=float, default=1.0)
    add("--logp_loss_lambda", type=float, default=0.1)
    add("--logp_loss_decay", type=float, default=1.0)
    add("--rgb_loss_lambda_2d", type=float, default=10.0)
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
    return p


_POSITIVE_INT = ["factor", "netdepth", "netwidth", "netdepth_fine", "netwidth_fine", "style_D",
                 "batch_size", "batch_size_style", "chunk", "N_samples", "i_print", "i_weights",
                 "ckp_num", "vae_d", "vae_w", "vae_latent", "render_factor", "fps", "finetune_size",
                 "i_weights_decoder", "style_size", "eval_factor", "eval_k_short", "eval_k_long"]
_NON_NEGATIVE = ["N_samples_fine", "origin_step", "total_step", "decoder_step", "embed_freq_coor",
                 "embed_freq_dir", "lrate_decay", "llffhold", "sigma_noise_std", "perturb", "vae_steps",
                 "geo_thresh", "eval_frames"]


def check_args(args):
    """Validate values that argparse cannot; raise ConfigError naming the option."""
    for name in _POSITIVE_INT:
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name} must be > 0, got {getattr(args, name)}")
    for name in _NON_NEGATIVE:
        if getattr(args, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(args, name)}")
    if not args.lrate > 0:
        raise ConfigError(f"--lrate must be > 0, got {args.lrate}")
    for name in ("gen_factor", "valid_factor"):
        if not getattr(args, name) > 0:
            raise ConfigError(f"--{name} must be > 0, got {getattr(args, name)}")
    if args.netdepth < 5 or args.netdepth_fine < 5:
        raise ConfigError("--netdepth/--netdepth_fine must be >= 5 (the skip connection enters before layer 5)")
    if args.style_D < 4:
        raise ConfigError("--style_D must be >= 4 (position re-enters before layer 4)")
    modes = [m for m in ("render_train", "render_valid", "render_train_style", "render_valid_style")
             if getattr(args, m)]
    if len(modes) > 1:
        raise ConfigError("choose one render mode, got: " + ", ".join("--" + m for m in modes))
    if args.style_interp and not (args.render_valid_style and args.style and "," in str(args.style)):
        raise ConfigError("--style_interp needs --render_valid_style and --style with two or more styles "
                          "(e.g. --style la_muse,sketch)")
    if args.spherify and not args.no_ndc:
        raise ConfigError("--spherify needs --no_ndc (NDC is for forward-facing scenes)")
    return args


def parse_args(argv=None):
    parser = build_parser()
    import sys
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, a in enumerate(argv):  # check the config file first: configargparse would exit
        path = a.split("=", 1)[1] if a.startswith("--config=") else (
            argv[i + 1] if a == "--config" and i + 1 < len(argv) else None)
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"--config {path}: no such file")
    # configargparse reports unknown keys in a config file as unknown arguments:
    # turn argparse's SystemExit into an error that names them.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError("unknown option(s): " + " ".join(unknown)
                          + (f" (from the command line or {args.config})" if args.config else ""))
    return check_args(args)
