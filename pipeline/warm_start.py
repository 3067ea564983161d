"""A NeRF to start from: --warm_start, or the original release's `<step>.tar` in the experiment folder.

When the experiment folder holds no `nerf_<step>.pkl` yet, the NeRF comes from
- `--warm_start PATH`: the original's `<step>.tar` (core/original_ckpt.py) or this project's
  `nerf_<step>.pkl`; or else
- the newest original `<step>.tar` in the experiment folder itself (where the original keeps
  them and resumes from them).
It is checked against the model-size options and written as `nerf_<step>.pkl` with fresh Adam
moments, so that stage 1 resumes from it as from its own checkpoint: it trains on to
--origin_step if the step is below it, and is finished otherwise.

The original's density trunk (encoding, layers, skip) is this project's, so its geometry is
used as it is; its colour head saw other inputs (the unnormalised NDC ray direction, a ReLU
after the feature layer), so its photoreal colours are a starting point for further NeRF
steps (raise --origin_step), not the original's renders (docs/ORIGINAL_COMPAT.md).
"""
import os

from core.checkpoint import CheckpointError, adam_state, load
from core.optim import Adam
from core.original_ckpt import ORIGINAL_NERF_NAME, newest_original_nerf, read_original_nerf
from pipeline.nerf_stage import NeRFSystem, nerf_checkpoints


def read_nerf_file(path):
    """(step, coarse state, fine state) of an original `<step>.tar` or a `nerf_<step>.pkl`."""
    if not os.path.isfile(path):
        raise CheckpointError(f"--warm_start {path}: no such file")
    if ORIGINAL_NERF_NAME.match(os.path.basename(path)) or not path.endswith(".pkl"):
        return read_original_nerf(path)
    ck = load(path, required_keys=("coarse", "fine", "step"))
    return int(ck["step"]), ck["coarse"], ck["fine"]


def warm_start_nerf(args, expdir, log=print):
    """Write `<expdir>/nerf_<step>.pkl` from the warm-start NeRF when the folder has none; returns
    its path, or None when nothing was done."""
    ckpts = nerf_checkpoints(expdir, args)
    if ckpts.latest()[1] is not None or args.no_reload:
        if args.warm_start:
            log(f"--warm_start {args.warm_start} not used: "
                + ("--no_reload" if args.no_reload else f"{expdir} has NeRF checkpoints of its own"))
        return None
    path = args.warm_start or newest_original_nerf(expdir)
    if not path:
        return None
    step, coarse, fine = read_nerf_file(path)
    if "views_linear.weight" in coarse and not args.use_viewdir:
        raise CheckpointError(f"{path}: a NeRF with view directions; add --use_viewdir (the original's configs set it)")
    system = NeRFSystem(args)
    system.load({"coarse": coarse, "fine": fine}, path)  # a clear error if the sizes differ
    saved = ckpts.save(step, {"step": step, **system.state(),
                              "optimizer": adam_state(Adam(system.parameters(), lr=args.lrate))})
    log(f"NeRF warm start from {path} (step {step}, fresh optimizer state) -> {saved}")
    return saved
