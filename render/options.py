"""RenderOptions: how rays are sampled and composited, one frozen value passed to the renderer.

A run builds it from its options once per phase, RenderOptions.from_args(args, scene, phase):

- "train"            NeRF training: stratified jitter (--perturb), density noise
                     (--sigma_noise_std), fine samples as --fine_sampling says
- "eval"             every render (photoreal and stylized views, geometry data, evaluation):
                     no jitter, no noise, deterministic fine samples
- "frozen_geometry"  style training: "train" without the density noise (the NeRF is frozen)

Inference renders may add the fast renderer (skip, render/fast.py: the same samples, the MLPs
evaluated only in occupied cells in front of the termination point) with fast_options.

The ray range is the scene's (LLFFScene.near_far): (0, 1) in NDC, else nerf-pytorch's
(0.9 * nearest bound, farthest bound).
"""
from dataclasses import dataclass, field, replace

PHASES = ("train", "eval", "frozen_geometry")


@dataclass(frozen=True)
class RenderOptions:
    near: object = 0.0               # a float, or per-ray values [R] (render_image splits them by chunk)
    far: object = 1.0
    n_samples: int = 64              # coarse (stratified) samples per ray
    n_fine: int = 64                 # extra fine (inverse-CDF) samples per ray; 0: coarse only
    perturb: bool = False            # jitter each coarse sample within its bin
    noise_std: float = 0.0           # std of the noise added to the raw density (a regulariser)
    white_bkgd: bool = False         # composite on white
    lindisp: bool = False            # coarse samples evenly spaced in inverse depth
    deterministic_fine: bool = True  # fine samples at fixed CDF positions (else stratified random)
    # share_color renders only: the colour composited from each ray's top_k heaviest samples, each
    # level's weights rescaled to its opacity (render/cached_samples.top_samples), as the style
    # stage's sample cache trains it; 0: every sample.  Exact densities (no skip) when set.
    top_k: int = 0
    # top_k 1 only: that one colour at the ray's expected depth (top_samples' surface)
    surface: bool = False
    # the fast renderer (render/fast.py: a Skipping - occupancy grid + early ray termination) for
    # renders without gradients; None: the exact renderer.  Set by render.fast.fast_options.
    skip: object = field(default=None, compare=False, repr=False)

    @classmethod
    def from_args(cls, args, scene, phase):
        """The options of a phase (PHASES) of the run whose options are args, on scene."""
        if phase not in PHASES:
            raise ValueError(f"RenderOptions: phase must be one of {', '.join(PHASES)}, got {phase!r}")
        train = phase != "eval"
        near, far = scene.near_far(ndc=not args.no_ndc)
        return cls(near=near, far=far, n_samples=args.N_samples, n_fine=args.N_samples_fine,
                   perturb=bool(args.perturb) and train,
                   noise_std=args.sigma_noise_std if phase == "train" else 0.0,
                   white_bkgd=args.white_bkgd, lindisp=False,
                   deterministic_fine=not (train and args.fine_sampling == "random"))

    def for_style(self, args):
        """These options for renders of the stylized NeRF: from each ray's --style_render_samples
        heaviest samples (0: every sample); with one, at its expected depth under --style_point surface."""
        k = int(args.style_render_samples)
        return replace(self, top_k=k, surface=k == 1 and args.style_point == "surface")
