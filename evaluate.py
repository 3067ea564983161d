"""Evaluate an experiment: held-out PSNR/SSIM, multi-view consistency of the stylized NeRF
against per-frame 2D AdaIN (the metric the original never released) and their style strength.

    python evaluate.py --config configs/fern_quick.txt [--eval_factor 2] [--eval_k_long 7]

Writes <basedir>/<expname>/eval/report.md, photoreal.csv, consistency.csv, style_strength.csv,
style_loss_by_tap.csv, consistency_backward.csv,
summary.csv, consistency.png and strip_<style>.png.
"""
import sys

from core.cli import run_command
from core.config import parse_args


def main(argv=None):
    def work(args):
        from evaluation.report import evaluate
        from pipeline import stages
        from pipeline.experiment import experiment_dir
        stages.apply_compute_options(args)
        evaluate(args, stages.load_scene(args), experiment_dir(args, create=False))

    def user_errors():
        from pipeline import stages
        return stages.UserError

    return run_command(lambda: parse_args(argv), work, user_errors)


if __name__ == "__main__":
    sys.exit(main())
