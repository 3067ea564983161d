"""How much of a trained NeRF's render its K heaviest samples per ray keep (--style_samples).

For views of a trained NeRF, at every --stride-th pixel: the fine level's compositing weights
(render.renderer.shared_weights), and for each K the share of the fine weight that the K
heaviest samples hold (before top_samples rescales them to the full opacity), and the PSNR of the
fine image rendered from those K samples (the NeRF's own colours there) against the exact fine
image.  The style stage's colour is the style MLP's, but the weights are the same: a K that keeps
the photoreal image keeps the stylized one.  Also the share of rays whose K samples hold none of
one level's weight (coarse or fine) while the level has some: where top_samples spreads that
level's opacity over the kept samples (before 2026-12-05 it scaled it to 0, a black ray).

    tar xzf bench/checkpoints/fern_long.tgz
    python bench/diag/diag_sample_cache.py --expdir logs/fern_long/bench --stride 4 --views 0 10
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from bench.common import checkpoint_parser, parse_checkpoint_args  # noqa: E402
from core.cli import run_command  # noqa: E402


def parse(argv):
    ap = checkpoint_parser(stride_default=4)
    ap.add_argument("--views", type=int, nargs="+", default=[0, 10], help="training view ids")
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8, 16, 32], help="samples kept per ray")
    return parse_checkpoint_args(ap, argv)


def heaviest(w_coarse, w_fine, k):
    """Indices [R,k] of each ray's k heaviest samples (by coarse + fine weight)."""
    return np.argsort(-(w_coarse + w_fine), axis=1, kind="stable")[:, :k]


def kept_share(w_coarse, w_fine, k):
    """Share of each ray's fine weight on its k heaviest samples (by coarse + fine weight)."""
    keep = heaviest(w_coarse, w_fine, k)
    return np.take_along_axis(w_fine, keep, 1).sum(1) / np.maximum(w_fine.sum(1), 1e-12)


def level_missed(w_coarse, w_fine, k):
    """Per ray: True where its k heaviest samples hold none of one level's weight, which it has."""
    keep = heaviest(w_coarse, w_fine, k)
    return np.logical_or(*[(np.take_along_axis(w, keep, 1).sum(1) <= 0) & (w.sum(1) > 0)
                           for w in (w_coarse, w_fine)])


def measure(a):
    import jittor as jt
    from dataset.rays import image_rays
    from evaluation.metrics import psnr
    from pipeline import nerf_stage
    from pipeline.stages import apply_compute_options, load_scene
    from render.cached_samples import cached_points, top_samples
    from render.options import RenderOptions
    from render.renderer import shared_weights
    args = a.args
    apply_compute_options(args)
    scene = load_scene(args)
    system, step, path = nerf_stage.load_trained_nerf(args, a.expdir)
    opts = RenderOptions.from_args(args, scene, "eval")
    coarse, fine = system.fields()
    H, W, focal = int(scene.hwf[0]), int(scene.hwf[1]), scene.hwf[2]
    print(f"{path} (step {step}): {opts.n_samples} + {opts.n_fine} samples a ray, every {a.stride}th pixel", flush=True)
    rows = {k: ([], [], []) for k in a.ks}
    for v in a.views:
        ro, rd, vd = (r.reshape(H, W, 3)[::a.stride, ::a.stride].reshape(-1, 3)
                      for r in image_rays(H, W, focal, scene.poses[v], ndc=not args.no_ndc))
        exact, cached = [], {k: [] for k in a.ks}
        shares, missed = {k: [] for k in a.ks}, {k: [] for k in a.ks}
        for s in range(0, len(ro), args.chunk):
            o, d, vdir = ro[s:s + args.chunk], rd[s:s + args.chunk], vd[s:s + args.chunk]
            z, wc, wf = shared_weights(coarse, fine, o, d, opts)
            with jt.no_grad():
                view = jt.array(vdir) if args.use_viewdir else None
                rgb, _ = fine(cached_points(o, d, z), view)
                exact.append((rgb.numpy() * wf[..., None]).sum(1))
                for k in a.ks:
                    zk, _, wk, _ = top_samples(z, wc, wf, k)
                    rgb_k, _ = fine(cached_points(o, d, zk), view)
                    cached[k].append((rgb_k.numpy() * wk[..., None]).sum(1))
                    shares[k].append(kept_share(wc, wf, k))
                    missed[k].append(level_missed(wc, wf, k))
        ref = np.concatenate(exact)
        for k in a.ks:
            share = np.concatenate(shares[k])
            rows[k][0].append(psnr(np.concatenate(cached[k]), ref))
            rows[k][1].append(share)
            rows[k][2].append(np.concatenate(missed[k]))
            print(f"  view {v:2d}, K {k:3d}: fine weight kept {share.mean():.4f} (5th percentile {np.percentile(share, 5):.4f}),"
                  f" PSNR against the exact fine image {rows[k][0][-1]:.2f} dB, rays a level's weight is missed on "
                  f"{rows[k][2][-1].mean():.2%}", flush=True)
    print("| K | fine weight kept, mean | 5th percentile | PSNR against exact | rays missing a level's weight |\n"
          "|---|---|---|---|---|")
    for k in a.ks:
        share = np.concatenate(rows[k][1])
        print(f"| {k} | {share.mean():.4f} | {np.percentile(share, 5):.4f} | {np.mean(rows[k][0]):.2f} dB "
              f"| {np.concatenate(rows[k][2]).mean():.2%} |")


def main(argv=None):
    def user_errors():
        from pipeline.stages import UserError
        return UserError
    return run_command(lambda: parse(argv), measure, user_errors)


if __name__ == "__main__":
    sys.exit(main())
