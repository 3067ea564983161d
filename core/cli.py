"""What every command-line entry point does around its work.

Parse the options (bad ones: one `error:` line, exit 2), set up Jittor through
backend.runtime, run, and turn errors a user can cause into one `error:` line (exit 1)
and a saved Ctrl-C stop into its resume hint (exit 130; 75 for --time_limit) - never a traceback.
A step that fails after a stop signal came (the signal also stopped Jittor's compiler: `timeout`
and job schedulers signal the whole process group), and a second Ctrl-C that aborts at once, are
stops too: one line naming the newest checkpoint (exit 130).
OS-level failures (a read-only folder, a full disk) and a device that cannot be set up
are such errors too: one line naming the path or the device.
"""
import sys


class OptionError(ValueError):
    """argparse's own complaint (unknown choice, bad number, missing option), as one line."""


def one_line_errors(parser):
    """Make `parser` raise OptionError instead of printing its whole usage and exiting:
    the line that matters is then the last one the user sees."""
    prog = parser.prog

    def error(message):
        raise OptionError(f"{message} (see `{prog} --help`)")
    parser.error = error
    return parser


def _setup_error_line(e, device, source):
    """One line for a failed runtime.setup: our message's first line and, for a nested
    failure (Jittor's import output), its last line - the actual cause."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    if len(lines) > 1:
        text += f" ... {lines[-1]}"
    if device == "cuda":
        from backend import runtime
        if not runtime._gpu_present():
            text = (f"{source}: no NVIDIA GPU is visible on this machine (no driver, nvidia-smi lists "
                    f"none); use --device cpu or auto. ({text})")
    return text


def run_command(parse, work, user_errors_of):
    """parse() -> args (raising ValueError on bad options); work(args) does the job;
    user_errors_of() -> tuple of exception types to report as one line (imported late,
    after Jittor is set up).  Returns the exit code."""
    import os
    from core.oserrors import describe
    try:
        args = parse()
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from backend import runtime
    device = (args.device or os.environ.get("STYLENERF_DEVICE") or "auto").lower()
    source = f"--device {device}" if args.device else f"STYLENERF_DEVICE={device}"
    try:
        runtime.setup(device=args.device)
    except (RuntimeError, OSError, ValueError) as e:
        print(f"error: {_setup_error_line(e, device, source)}", file=sys.stderr)
        return 1
    from core.interrupt import TrainingInterrupted, WorkInterrupted, abort_line, reset, stop_line, stopped_by
    from core.train_loop import TimeLimitReached
    from core.train_loop import start_time_box
    start_time_box(getattr(args, "time_limit", 0))  # the training loops' deadline (--time_limit)
    reset()
    try:
        work(args)
    except OSError as e:  # before user errors: FileNotFoundError is one of them too
        print(f"error: {describe(e)}", file=sys.stderr)
        return 1
    except user_errors_of() as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except TimeLimitReached as e:  # EX_TEMPFAIL: stopped on purpose, more to do
        print(str(e), file=sys.stderr)
        return 75
    except (TrainingInterrupted, WorkInterrupted) as e:
        print(str(e), file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: aborted at once, mid-step
        print(abort_line(), file=sys.stderr)
        return 130
    except Exception as e:
        if stopped_by() is None:
            raise
        print(stop_line(e), file=sys.stderr)
        return 130
    return 0
