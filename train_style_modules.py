"""Train or use the 2D style modules (options as the original's train_style_modules.py).

    python train_style_modules.py --task finetune_decoder   # AdaIN decoder -> ./pretrained/decoder_finetuned.pkl
    python train_style_modules.py [--task vae]              # style VAE     -> ./pretrained/vae.pkl
    python train_style_modules.py --task stylize --content a.png --style_image b.jpg --output out.png

Training resumes from the newest checkpoint in --save_dir; see pipeline/pretrain_2d.py.
Options: core/config.py (build_pretrain_parser).
"""
import sys

from core.cli import run_command
from core.config import parse_pretrain_args


def main(argv=None):
    def work(args):
        from pipeline import pretrain_2d
        pretrain_2d.run(args)

    def user_errors():
        from pipeline import pretrain_2d
        return pretrain_2d.USER_ERRORS

    return run_command(lambda: parse_pretrain_args(argv), work, user_errors)


if __name__ == "__main__":
    sys.exit(main())
