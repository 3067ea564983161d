"""StylizedNeRF: train and render (options as the original; see configs/fern.txt).

    python run_stylenerf.py --config configs/fern.txt                      # all stages, resumable
    python run_stylenerf.py --config configs/fern.txt --render_valid       # photoreal novel views
    python run_stylenerf.py --config configs/fern.txt --render_valid_style # stylized novel views
"""
import sys

from core.cli import run_command
from core.config import parse_args


def main(argv=None):
    def work(args):
        from pipeline import stages
        stages.run(args)

    def user_errors():
        from pipeline import stages
        return stages.UserError

    return run_command(lambda: parse_args(argv), work, user_errors)


if __name__ == "__main__":
    sys.exit(main())
