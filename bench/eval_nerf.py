"""PSNR of a trained NeRF checkpoint on held-out and training views, on any machine.

Renders every --stride-th pixel (in both directions) of each view with the fine network,
without noise or jitter, prints the PSNR of each view and the mean of each group.  On the
2-core CPU a whole fern view (1008x756, 64+64 samples) takes about 10 minutes, --stride 2 a
quarter of that.  Training views far below the held-out target mean an underfitted model
rather than an overfitted one.

    tar xzf bench/checkpoints/fern_long.tgz      # fern.txt's NeRF after 120,001 steps
    python bench/eval_nerf.py --expdir logs/fern_long/bench --stride 2 --views test train
"""
import os
import sys
import time

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.common import checkpoint_parser, parse_checkpoint_args  # noqa: E402
from core.cli import run_command  # noqa: E402


def parse(argv):
    ap = checkpoint_parser(stride_default=1)
    ap.add_argument("--views", nargs="+", default=["test", "train"],
                    help="groups: test (held-out), train (as many training views, spread), or ids such as 1,9,19")
    return parse_checkpoint_args(ap, argv)


def evaluate(a):
    """Print the PSNR of every view of every group; returns {group: mean PSNR}."""
    from pipeline import nerf_stage
    from pipeline.stages import apply_compute_options, load_scene
    args = a.args
    apply_compute_options(args)
    scene = load_scene(args)
    groups = {g: group_views(g, scene) for g in a.views}  # bad ids fail before any render
    system, step, path = nerf_stage.load_trained_nerf(args, a.expdir)
    print(f"{path} (step {step}), every {a.stride}th pixel", flush=True)
    means = {}
    for group, ids in groups.items():
        t = time.time()
        psnrs = []
        for i in tqdm(ids, desc=group, leave=False):  # a whole view takes minutes on a CPU
            psnrs += nerf_stage.view_psnrs(system, args, scene, [i], stride=a.stride)
            tqdm.write(f"  {group} view {int(i):3d}: PSNR {psnrs[-1]:.3f}")
        means[group] = float(np.mean(psnrs))
        print(f"{group}: mean PSNR {means[group]:.3f} over {len(ids)} views ({time.time() - t:.0f} s)", flush=True)
    return means


def group_views(group, scene):
    """The view ids of one --views group."""
    from pipeline.nerf_stage import spread_train_views
    if group == "test":
        return scene.i_test
    if group == "train":
        return spread_train_views(scene, len(scene.i_test))
    try:
        ids = [int(v) for v in group.split(",")]
    except ValueError:
        raise ValueError(f"--views: expected test, train or view ids such as 1,9,19; got {group!r}") from None
    bad = [i for i in ids if not 0 <= i < len(scene.poses)]
    if bad:
        raise ValueError(f"--views: view ids {bad} out of range (the scene has {len(scene.poses)} views)")
    return np.array(ids)


def main(argv=None):
    """Exit code 0; a bad option, folder or view id: one `error:` line (core.cli)."""
    def user_errors():
        from pipeline.stages import UserError
        return UserError
    return run_command(lambda: parse(argv), evaluate, user_errors)


if __name__ == "__main__":
    sys.exit(main())
