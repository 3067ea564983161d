"""Evaluate an experiment: held-out PSNR/SSIM and multi-view consistency of the
stylized NeRF against per-frame 2D AdaIN (the metric the original never released).

    python evaluate.py --config configs/fern_quick.txt [--eval_factor 2] [--eval_k_long 7]

Writes <basedir>/<expname>/eval/report.md, consistency.csv, photoreal.csv, consistency.png.
"""
import sys

from core.config import ConfigError, parse_args


def main(argv=None):
    try:
        args = parse_args(argv)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from core import runtime
    runtime.setup(device=args.device)
    from evaluation.report import evaluate
    from pipeline import stages
    from pipeline.experiment import experiment_dir
    try:
        scene = stages.load_scene(args)
        evaluate(args, scene, experiment_dir(args, create=False))
    except stages.UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
