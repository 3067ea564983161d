"""StylizedNeRF: train and render (options as the original; see configs/fern.txt).

    python run_stylenerf.py --config configs/fern.txt                      # all stages, resumable
    python run_stylenerf.py --config configs/fern.txt --render_valid       # photoreal novel views
    python run_stylenerf.py --config configs/fern.txt --render_valid_style # stylized novel views
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
    from core.interrupt import TrainingInterrupted
    from pipeline import stages
    try:
        stages.run(args)
    except stages.UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
