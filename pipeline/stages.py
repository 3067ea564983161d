"""The stages of run_stylenerf.py, in one list, run in order from the first unfinished one.

    1 NeRF pre-training -> 2 geometry data -> 3 decoder consistency fine-tune
    -> 4 stylized targets -> 5 latent codes (VAE) -> 6 style training

Each Stage has done(run) (its output exists and is current: a cheap look at files and cache
keys) and run(run) (load or build its output, resuming where a killed run stopped).  A later
stage asks the Run for what it needs (run.get("geo")), which runs the stage that makes it -
for a finished stage that only loads its cache.  Render options (--render_train,
--render_valid, --render_train_style, --render_valid_style) render from the newest
checkpoints and return.
"""
import random
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core import stage_record, timing
from core.checkpoint import CheckpointError
from core.compile_count import jit_kernels
from dataset.image_folder import ImageFolderError
from dataset.llff import LLFFError, load_llff
from pipeline import (decoder_finetune, geometry, latents, mimic, nerf_stage, style_inputs, style_samples, style_stage,
                      targets, warm_start)
from pipeline.experiment import experiment_dir
from render.options import RenderOptions

# errors a user can cause: reported as one line by run_stylenerf.py
UserError = (ValueError, FileNotFoundError, CheckpointError, LLFFError, ImageFolderError)


def load_scene(args):
    return load_llff(args.datadir, factor=args.factor, spherify=args.spherify, llffhold=args.llffhold)


CPU_MAX_CHUNK = 4096


def apply_compute_options(args):
    """--matmul, --gemm, --conv, --cudnn_search and --cublaslt_bgrad: how products run on the GPU
    (global, like the device)."""
    from models.layers import on_gpu, set_library_switches, set_products
    set_products(args.matmul, args.gemm, args.conv)
    set_library_switches(args.cudnn_search, args.cublaslt_bgrad)
    if not on_gpu() and args.chunk > CPU_MAX_CHUNK:
        # Jittor's CPU executor holds several [chunk x samples x width] activations at once:
        # fern_quick's 32768 rays took 24 GB of host memory in a CPU render (killed, 2026-12-02)
        print(f"--chunk {args.chunk} -> {CPU_MAX_CHUNK} rays per render batch on the CPU (host memory)")
        args.chunk = CPU_MAX_CHUNK


@dataclass
class Stage:
    name: str                      # "3 decoder fine-tune": number and name, as the stage time lines
    makes: tuple                   # what run() puts into the Run (run.get names)
    done: Callable                 # done(run) -> bool
    run: Callable                  # run(run) -> dict of `makes`
    skip: Callable = None          # skip(run): what a finished stage still does when skipped


class Run:
    """One run_stylenerf.py training run: its options, scene, folder, and the stages' products."""

    def __init__(self, args, scene, expdir, log=print):
        self.args, self.scene, self.expdir, self.log = args, scene, expdir, log
        self.products = {}

    def get(self, name):
        if name not in self.products:
            stage = next(s for s in STAGES + [NETWORKS] if name in s.makes)
            self.products.update(stage.run(self))
        return self.products[name]

    def styles(self):
        """(names, paths, images at --style_size) of the selected styles, loaded once."""
        if "styles" not in self.products:
            from pipeline.style_selection import load_style_images, select_styles
            names, paths = select_styles(self.args)
            self.products["styles"] = (names, paths, load_style_images(paths, self.args.style_size))
        return self.products["styles"]

    def finetune_styles(self):
        """The style images at the fine-tune's size (its style losses), loaded once."""
        if "finetune_styles" not in self.products:
            from pipeline.style_selection import load_style_images
            self.products["finetune_styles"] = load_style_images(self.styles()[1], self.args.finetune_size // 2)
        return self.products["finetune_styles"]

    def nerf_step(self):
        return nerf_stage.nerf_checkpoints(self.expdir, self.args).latest()[0]


def _nerf(run):
    return {"nerf": nerf_stage.train_nerf(run.args, run.scene, run.expdir, run.log)}


def _geometry(run):
    system, step, _ = nerf_stage.load_trained_nerf(run.args, run.expdir)
    geo = geometry.load_or_generate(run.args, run.scene, run.expdir, system, step, run.log)
    return {"system": system, "geo": geo}


def _networks(run):
    from pipeline.style_selection import load_style_networks
    encoder, decoder = load_style_networks(run.args, run.log)
    return {"encoder": encoder, "pretrained_decoder": decoder}


def _decoder(run):
    decoder = decoder_finetune.finetune_decoder(run.args, run.get("geo"), run.get("encoder"),
                                                run.get("pretrained_decoder"), run.finetune_styles(),
                                                run.expdir, run.log)
    return {"decoder": decoder}


def _targets(run):
    mimic.discard_stale_targets(run.args, run.expdir)  # changed by a style training not continued
    names, _, images = run.styles()
    tgts = targets.load_or_make_targets(run.args, run.get("geo"), run.get("encoder"), run.get("decoder"),
                                        list(zip(names, images)), run.expdir, run.log)
    # each view's own stylization beside the propagated targets (--style_patch_ref view), else None
    return {"targets": tgts, "view_targets": targets.load_view_targets(run.args, run.expdir, names)}


def _latents(run):
    # statistics at --style_size, as train_style_modules.py --task vae computes them
    encoder = run.get("encoder")
    vae = latents.load_or_train_vae(run.args, encoder, run.expdir, run.log)
    mu, logvar = latents.style_priors(vae, encoder, run.styles()[2])
    return {"mu": mu, "logvar": logvar}


def _style(run):
    args = run.args
    # no density noise on a frozen NeRF; --style_render_samples
    opts = RenderOptions.from_args(args, run.scene, "frozen_geometry").for_style(args)
    names, _, images = run.styles()
    tgts, mim = run.get("targets"), None
    if mimic.enabled(args):  # the decoder keeps learning, from the style NeRF's renders
        mim = mimic.Mimic(args, run.get("system"), run.get("geo"), run.get("encoder"), run.get("decoder"),
                          run.finetune_styles(), images, tgts, opts, run.expdir)
        run.log(f"mutual learning: from step {args.decoder_step} (--decoder_step), every {args.mimic_every} "
                f"style steps (--mimic_every), the decoder learns from the stylized NeRF's renders and "
                f"remakes the targets the style MLP learns from")
    encoder = run.get("encoder") if args.style_patch_weight > 0 else None  # the texture term's
    samples = None
    if args.style_samples > 0:  # the frozen density's weights, rendered once
        samples = style_samples.load_or_build(args, run.get("geo"), run.get("system").fields(),
                                              RenderOptions.from_args(args, run.scene, "eval"), run.expdir, run.log)
    model = style_stage.train_style(args, run.get("system"), run.get("geo"), tgts, run.get("mu"),
                                    run.get("logvar"), names, run.expdir, opts, run.log, mimic=mim,
                                    encoder=encoder, samples=samples, style_images=images,
                                    view_targets=run.get("view_targets"))
    run.log(f"style training finished at step {args.total_step}; styles: {', '.join(names)}")
    return {"style_model": model}


def _geometry_done(run):
    step = run.nerf_step()
    return step is not None and geometry.is_current(run.args, run.scene, run.expdir, step)


def _style_done(run):
    # finished, and on this run's inputs (else stage 6 runs and names what changed)
    step, _ = style_stage.style_checkpoints(run.expdir, run.args).latest()
    return step is not None and step >= run.args.total_step and not style_inputs.mismatch(run.args, run.expdir)


STAGES = [
    # skipped, it still builds its model once: the same random draws as a run that resumed it, so
    # the later stages' models start from the same weights either way
    Stage("1 NeRF", ("nerf",), lambda r: nerf_stage.nerf_stage_done(r.args, r.expdir, r.log), _nerf,
          skip=lambda r: nerf_stage.NeRFSystem(r.args)),
    Stage("2 geometry", ("system", "geo"), _geometry_done, _geometry),
    Stage("3 decoder fine-tune", ("decoder",),
          lambda r: decoder_finetune.is_current(r.args, r.expdir, r.finetune_styles()), _decoder),
    Stage("4 stylized targets", ("targets", "view_targets"),
          lambda r: targets.is_current(r.args, r.expdir, r.styles()[0]) and not mimic.stale_targets(r.args, r.expdir),
          _targets),
    Stage("5 latents (VAE)", ("mu", "logvar"), lambda r: latents.vae_file(r.args, r.expdir) is not None, _latents),
    Stage("6 style training", ("style_model",), _style_done, _style),
]
# the 2D networks are no stage of their own: loaded on first use
NETWORKS = Stage("2D networks", ("encoder", "pretrained_decoder"), lambda r: True, _networks)


def stages_for(args):
    """The stages this run asks for: all six, or only the NeRF when total_step <= origin_step."""
    return STAGES if args.total_step > args.origin_step else STAGES[:1]


def run_stages(run, stages, log=print):
    """Run `stages` in order from the first unfinished one; one line per stage with its state
    (done, or run: what to expect before it starts (core/stage_record.py), its elapsed time and
    the kernels Jittor compiled for it after - the stage's own progress bar between, whose loop
    says its expected time once measured)."""
    first = next((i for i, s in enumerate(stages) if not s.done(run)), None)
    for i, s in enumerate(stages):
        state = "done" if first is None or i < first else "to run"
        log(f"stage {s.name}: {state}")
    if first is None:
        return first
    for s in stages[:first]:
        if s.skip is not None:
            s.skip(run)
    digest = stage_record.settings_digest(run.args)
    from models.layers import on_gpu
    on_cpu = not on_gpu()
    for s in stages[first:]:
        log(f"stage {s.name} ({stages.index(s) + 1}/{len(stages)}): "
            + stage_record.expectation(s.name, digest, on_cpu, cache_empty=jit_kernels() == 0))
        t0, kernels = time.time(), jit_kernels()
        with timing.stage(s.name):
            run.products.update(s.run(run))
        compiled, seconds = jit_kernels() - kernels, time.time() - t0
        log(f"stage {s.name}: finished in {seconds:.1f} s"
            + (f" ({compiled} kernels compiled by Jittor)" if compiled > 0 else ""))
        stage_record.save(s.name, seconds, compiled, digest)
    return first


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
        from pipeline import stylized_render
        return stylized_render.render(args, scene, expdir, log)
    from pipeline import preflight
    from pipeline.experiment import remove_partial_files
    remove_partial_files(expdir)  # left by a run killed mid-write
    stages = stages_for(args)
    if len(stages) > 1:  # weights, style images and sizes, before hours of NeRF training
        preflight.check_target_size(args, scene.hwf)
        preflight.check_sample_cache(args, scene.hwf, len(geometry.geometry_poses(args, scene)))
        preflight.check_style_inputs(args, expdir, log)
        _, trained = style_stage.style_checkpoints(expdir, args).latest()
        if trained is not None and not args.no_reload:  # options changed since: say so before stage 1
            style_inputs.check(args, expdir, trained, options_only=True)
    else:
        log("total_step <= origin_step: no style training asked for")
    r = Run(args, scene, expdir, log)
    run_stages(r, stages, log)
    return r.products.get("style_model")
