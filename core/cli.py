"""What every command-line entry point does around its work.

Parse the options (bad ones: one `error:` line, exit 2), set up Jittor through
backend.runtime, run, and turn errors a user can cause into one `error:` line (exit 1)
and a saved Ctrl-C stop into its resume hint (exit 130) - never a traceback.
"""
import sys


def run_command(parse, work, user_errors_of):
    """parse() -> args (raising ValueError on bad options); work(args) does the job;
    user_errors_of() -> tuple of exception types to report as one line (imported late,
    after Jittor is set up).  Returns the exit code."""
    try:
        args = parse()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from backend import runtime
    runtime.setup(device=args.device)
    from core.interrupt import TrainingInterrupted
    try:
        work(args)
    except user_errors_of() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except TrainingInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    return 0
