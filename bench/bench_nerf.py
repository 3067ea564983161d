"""Benchmark of the NeRF stage on fern (run on the GPU machine).

Prints iterations/s at the fern config's workload (factor 4, 2048 rays, 64+64
samples, view directions), the held-out PSNR (every 8th view) and the PSNR of as many
training views after each step count in --eval_at.  Peer figure (JITTOR_GPU.md, same GPU kind):
nerf-pytorch 18 it/s, 21.2 PSNR after 5,000 steps.

    python bench/bench_nerf.py --datadir data/nerf_llff_data/fern --eval_at 1000 2500 5000

With --basedir the run resumes from the newest checkpoint there, and SIGTERM (`timeout`) or
Ctrl-C saves one and stops: the config's whole NeRF stage (fern.txt: 120,001 steps, longer than
a job's time limit may be) can run over several runs.  Step counts a checkpoint has already passed are
not evaluated again, except the last.

Last, where PyTorch and a GPU are there (never a project dependency), the same step in PyTorch
(bench/torch_nerf.py: nerf-pytorch's step at this workload, TF32 as ours) and ours are each timed
over --yardstick_steps steps after a warm-up, on the same batches, and the ratio printed: the
speed-up measured in one run.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from backend import runtime  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--datadir", default="data/nerf_llff_data/fern")
    ap.add_argument("--config", default="configs/fern.txt")
    ap.add_argument("--eval_at", type=int, nargs="+", default=[1000, 2500, 5000])
    ap.add_argument("--out", default=None, help="write figures as JSON here")
    ap.add_argument("--basedir", default=None, help="keep the experiment (bench/) here and resume from it "
                    "(default: a new temporary folder)")
    ap.add_argument("--yardstick_steps", type=int, default=200,
                    help="steps each of the PyTorch yardstick and ours are timed (0: no yardstick)")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more run_stylenerf options")
    a = ap.parse_args(argv)
    jt = runtime.setup()
    from core.config import parse_args
    from pipeline import nerf_stage
    from core.interrupt import TrainingInterrupted
    from pipeline.stages import apply_compute_options, load_scene
    basedir = a.basedir or tempfile.mkdtemp(prefix="bench_nerf_")
    expdir = os.path.join(basedir, "bench")
    rows = []
    system = scene = None
    targets = sorted(a.eval_at)
    done = 0  # steps a resumed checkpoint has already trained
    if a.basedir:
        args = parse_args(["--config", a.config, "--datadir", a.datadir] + a.extra)
        done = nerf_stage.nerf_checkpoints(expdir, args).latest()[0] or 0
        if done:
            print(f"resuming from step {done} in {expdir}", flush=True)
    prev_step = done
    for target in targets:
        if target <= done and target != targets[-1]:
            continue
        args = parse_args(["--config", a.config, "--datadir", a.datadir, "--basedir", basedir,
                           "--expname", "bench", "--origin_step", str(target), "--i_print", "100",
                           "--i_weights", str(min(max(a.eval_at), 10000))] + a.extra)
        apply_compute_options(args)
        if scene is None:
            t = time.time()
            scene = load_scene(args)
            print(f"loaded fern {scene.images.shape} in {time.time() - t:.1f}s", flush=True)
        jt.sync_all(True)
        t = time.time()
        try:
            system = nerf_stage.train_nerf(args, scene, expdir, log=lambda *_: None)
        except TrainingInterrupted as e:  # the time limit ended: saved, the next run resumes
            dt = time.time() - t
            print(f"{e}\n(this run: steps {prev_step}..{e.step} in {dt:.1f} s = "
                  f"{(e.step - prev_step) / max(dt, 1e-9):.2f} it/s with compiling)", flush=True)
            rows.append({"stopped_at": e.step, "segment_steps": e.step - prev_step, "segment_s": round(dt, 2)})
            break
        jt.sync_all(True)
        dt = time.time() - t
        t = time.time()
        psnr = nerf_stage.heldout_psnr(system, args, scene)
        # as many training views, spread out: how well the views it learns from are fitted
        # (a model short of the held-out target there too is underfitted, not overfitted)
        train_ids = nerf_stage.spread_train_views(scene, len(scene.i_test))
        train_psnr = float(np.mean(nerf_stage.view_psnrs(system, args, scene, train_ids)))
        t_eval = time.time() - t
        row = {"steps": target, "segment_steps": target - prev_step, "segment_s": round(dt, 2),
               "it_per_s": round((target - prev_step) / dt, 2), "heldout_psnr": round(psnr, 3),
               "train_psnr": round(train_psnr, 3), "train_views": [int(i) for i in train_ids],
               "eval_s": round(t_eval, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        prev_step = target
    stopped = any("stopped_at" in r for r in rows)  # a time limit's signal: no more work
    yard = yardstick(args, scene, a.yardstick_steps) if scene is not None and a.yardstick_steps and not stopped else None
    mem = jt.flags.use_cuda and os.popen("nvidia-smi --query-gpu=memory.used --format=csv,noheader").read().strip()
    print("\nsteps  it/s(segment)  held-out PSNR  training-view PSNR")
    for r in rows:
        if "steps" in r:
            print(f"{r['steps']:6d}  {r['it_per_s']:12.2f}  {r['heldout_psnr']:13.2f}  {r['train_psnr']:18.2f}")
        else:
            print(f"stopped at step {r['stopped_at']} (checkpoint saved; run again with the same --basedir)")
    print(f"GPU memory in use: {mem}; {runtime.summary()}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"rows": rows, "yardstick": yard, "runtime": runtime.summary(), "gpu_mem": mem}, f, indent=1)


def yardstick(args, scene, steps, warmup=20, need_gpu=True):
    """{"ours_it_s", "torch_it_s", "ratio", ...} for the NeRF step at args' workload on the same
    batches (bench.common.nerf_train_step's), or None (with a line) where PyTorch is missing or,
    need_gpu, CUDA (a CPU yardstick says nothing about the GPU step)."""
    import jittor as jt
    from bench import torch_nerf
    from bench.common import nerf_train_step
    from core.optim import Adam
    from dataset.rays import PixelRays
    from render.options import RenderOptions
    if not (torch_nerf.available() and (jt.flags.use_cuda or not need_gpu)):
        print("PyTorch yardstick: skipped (it needs PyTorch and a GPU)", flush=True)
        return None
    import torch
    torch.backends.cuda.matmul.allow_tf32 = True  # as our TF32 matmuls
    rays = PixelRays.from_scene(scene, scene.i_train, ndc=not args.no_ndc)
    batches = [rays.sample(args.batch_size, np.random.default_rng([0, k])) for k in range(warmup + steps)]
    opts = RenderOptions.from_args(args, scene, "train")
    theirs = torch_nerf.TorchNeRFStep(args, opts.near, opts.far)
    ours, _ = nerf_train_step(args, scene, Adam, n_rays=args.batch_size)

    def rate(step, sync):
        for k in range(warmup):
            step(k)
        sync()
        t = time.time()
        for k in range(warmup, warmup + steps):
            step(k)
        sync()
        return steps / (time.time() - t)
    torch_it_s = rate(lambda k: theirs.step(batches[k]), theirs.sync)
    ours_it_s = rate(ours, lambda: jt.sync_all(True))
    out = {"ours_it_s": round(ours_it_s, 2), "torch_it_s": round(torch_it_s, 2),
           "ratio": round(ours_it_s / torch_it_s, 2), "steps": steps, "torch": torch.__version__}
    print(f"NeRF step, {args.batch_size} rays: ours {ours_it_s:.1f} it/s, PyTorch {torch.__version__} "
          f"{torch_it_s:.1f} it/s: {out['ratio']:.2f}x", flush=True)
    return out


if __name__ == "__main__":
    main()
