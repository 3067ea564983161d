"""Runs the stages of run_stylenerf.py in order, resuming at the first unfinished one.

Stages: 1 NeRF pre-training -> 2 geometry data -> 3 decoder consistency fine-tune
-> 4 stylized targets -> 5 latent codes -> 6 style training.  Render options
(--render_train, --render_valid, --render_train_style, --render_valid_style)
render from the newest checkpoints and return.
"""
import random

import numpy as np

from core import timing
from core.checkpoint import CheckpointError
from dataset.image_folder import ImageFolderError
from dataset.llff import LLFFError, load_llff
from pipeline import nerf_stage, warm_start
from pipeline.experiment import experiment_dir

# errors a user can cause: reported as one line by run_stylenerf.py
UserError = (ValueError, FileNotFoundError, CheckpointError, LLFFError, ImageFolderError)


def load_scene(args):
    return load_llff(args.datadir, factor=args.factor, spherify=args.spherify, llffhold=args.llffhold)


CPU_MAX_CHUNK = 4096


def apply_compute_options(args):
    """--matmul, --gemm and --conv: how products run on the GPU (global, like the device)."""
    from models.layers import on_gpu, set_products
    set_products(args.matmul, args.gemm, args.conv)
    if not on_gpu() and args.chunk > CPU_MAX_CHUNK:
        # Jittor's CPU executor holds several [chunk x samples x width] activations at once:
        # fern_quick's 32768 rays took 24 GB of host memory in a CPU render (killed, 2026-12-02)
        print(f"--chunk {args.chunk} -> {CPU_MAX_CHUNK} rays per render batch on the CPU (host memory)")
        args.chunk = CPU_MAX_CHUNK


def run(args, log=print):
    import jittor as jt
    apply_compute_options(args)
    np.random.seed(args.seed)
    random.seed(args.seed)
    jt.set_global_seed(args.seed)
    scene = load_scene(args)
    expdir = experiment_dir(args)
    log(f"experiment folder: {expdir}")
    warm_start.warm_start_nerf(args, expdir, log)  # --warm_start or the original's <step>.tar
    if args.render_train:
        return nerf_stage.render_train(args, scene, expdir, log)
    if args.render_valid:
        return nerf_stage.render_valid(args, scene, expdir, log)
    if args.render_train_style or args.render_valid_style:
        from pipeline import render_style
        return render_style.render(args, scene, expdir, log)
    from pipeline import preflight, stylize
    from pipeline.experiment import remove_partial_files
    remove_partial_files(expdir)  # left by a run killed mid-write
    if args.total_step > args.origin_step:  # weights and style images, before hours of NeRF training
        preflight.check_style_inputs(args, expdir, log)
    with timing.stage("1 NeRF"):
        nerf_stage.train_nerf(args, scene, expdir, log)
    return stylize.run_style_stages(args, scene, expdir, log)
