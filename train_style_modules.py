"""Train or use the 2D style modules (options as the original's train_style_modules.py).

    python train_style_modules.py --task finetune_decoder   # AdaIN decoder -> ./pretrained/decoder_finetuned.pkl
    python train_style_modules.py [--task vae]              # style VAE     -> ./pretrained/vae.pkl
    python train_style_modules.py --task stylize --content a.png --style b.jpg --output out.png

Training resumes from the newest checkpoint in --save_dir; see pipeline/style_modules.py.
"""
import sys

import configargparse

from core.cli import one_line_errors, run_command
from core.config import add_vae_options


def build_parser():
    p = configargparse.ArgumentParser(description=__doc__.split("\n")[0],
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
    add("--content", type=str, default=None, help="stylize: content image")
    add("--style", type=str, default=None, help="stylize: style image")
    add("--output", type=str, default=None, help="stylize: output PNG")
    add("--alpha", type=float, default=1.0, help="stylize: style strength in [0, 1]")
    add("--device", type=str, default=None, choices=["auto", "cpu", "cuda"],
        help="where to run (default: env STYLENERF_DEVICE or auto)")
    noop = "accepted for compatibility with the original; no effect here (docs/ORIGINAL_COMPAT.md)"
    add("--log_dir", type=str, default="./logs/stylenet/", help=noop)
    add("--print_interval", type=int, default=20, help=noop)
    add("--nerf_content_dir", type=str, default="./nerf_gen_data2/", help=noop)
    add("--no_ndc", action="store_true", help=noop)
    add("--no_reload", action="store_true", help=noop)
    return one_line_errors(p)


def main(argv=None):
    def work(args):
        from pipeline import style_modules
        style_modules.run(args)

    def user_errors():
        from pipeline import style_modules
        return style_modules.USER_ERRORS

    return run_command(lambda: build_parser().parse_args(argv), work, user_errors)


if __name__ == "__main__":
    sys.exit(main())
