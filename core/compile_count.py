"""How many kernels Jittor has compiled into its cache (the fused-op libraries in its jit folder).

Compiling is most of a fresh machine's wait: a stage's first step can take minutes while Jittor
compiles that stage's kernels, then the same step takes milliseconds.  The stage lines of
run_stylenerf.py count the kernels each stage compiled, and a training loop whose first step
compiled says so instead of letting its progress bar extrapolate the compile to hours.
"""
import os


def jit_folder():
    import jittor as jt
    return os.path.join(jt.flags.cache_path, "jit")


def jit_kernels(folder=None):
    """The count of compiled kernels in Jittor's cache (0 where the folder cannot be read)."""
    try:
        with os.scandir(folder or jit_folder()) as entries:
            return sum(1 for e in entries if e.name.endswith(".so"))
    except OSError:
        return 0
