"""Up-front checks: every input a later stage reads, before hours of work.

run_stylenerf.py, before the NeRF stage (when style training is asked for): the VGG,
decoder and VAE weight files are opened and their layout and shapes checked (NumPy reads,
no network is built), and every selected style image is decoded once - as are the VAE's
training styles when no VAE file is there yet.  train_style_modules.py --task
finetune_decoder: the weights, every content and style image, and a writable --save_dir,
before iteration 1.  A problem is the same one-line error the stage itself would give,
only hours earlier; all undecodable images are named at once.
"""
import contextlib
import io
import os

from core.oserrors import remove_quietly, writing
from core.pth import MissingWeightsError, check_state_dict, load_state_dict
from dataset.image_folder import ImageFolderError, list_images, list_images_of, undecodable

PROGRESS_FROM = 200  # images: show a progress bar for folders larger than this


@contextlib.contextmanager
def _quiet():
    """The weight lookups say when they substitute a file; the real load says it later."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def check_vgg(path):
    """(resolved path, deepest channels) of the VGG weights; PthError if the layout is wrong."""
    from models.vgg import TAP_CHANNELS, depth_of, expected_shapes, resolve_vgg_path
    with _quiet():
        resolved = resolve_vgg_path(path)
    sd = load_state_dict(resolved)
    deepest = depth_of(sd, resolved)
    check_state_dict(sd, expected_shapes(deepest), resolved)
    return resolved, TAP_CHANNELS[deepest]


def check_decoder(path, channels):
    """The resolved decoder file (a .pth or a Decoder.save pickle) after checking its shapes."""
    from models.decoder import Decoder, resolve_decoder_path
    with _quiet():
        resolved = resolve_decoder_path(path, channels)
    Decoder.check_state_dict(Decoder.read_state_dict(resolved), channels, resolved)
    return resolved


def check_vae(path, channels):
    """A VAE file: readable, its weights fit its stored sizes, and its input fits the encoder."""
    from models.vae import StyleVAE
    vae = StyleVAE.load(path)  # a few small matrices: checks every shape against the config
    if vae.in_dim != 2 * channels:
        raise ValueError(f"{path}: a VAE over {vae.in_dim} statistics, but the VGG encoder gives "
                       f"{2 * channels} (= 2 x {channels} channels); train one for this encoder "
                       "(train_style_modules.py --task vae) or remove the file")


def check_images(paths, what):
    """Decode every file once; one error naming every file that does not decode."""
    bad = undecodable(paths, progress=f"checking {what}" if len(paths) > PROGRESS_FROM else None)
    if bad:
        names = ", ".join(p for p, _ in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ImageFolderError(f"{len(bad)} of {len(paths)} {what} cannot be decoded (expected PNG or "
                               f"JPEG files): {names}; replace or remove them")


def check_writable(folder):
    """Create `folder` and a file in it now, not at the first checkpoint (OSError names it)."""
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, f".write_check_{os.getpid()}")
    try:
        with writing(probe), open(probe, "wb") as f:
            f.write(b"0" * 4096)
    finally:
        remove_quietly(probe)


def check_style_inputs(args, expdir, log=print):
    """run_stylenerf.py: everything stages 3-6 read from outside the experiment folder."""
    from pipeline.style_selection import vae_style_dir
    from pipeline.style_selection import select_styles
    names, paths = select_styles(args)
    check_images(paths, "style images")
    vgg, channels = check_vgg(args.vgg_pth_path)
    decoder = check_decoder(args.decoder_pth_path, channels)
    vae = next((p for p in (args.vae_pth_path, os.path.join(expdir, "vae.pkl")) if p and os.path.exists(p)), None)
    if vae is not None:
        check_vae(vae, channels)
        vae_note = f"VAE {vae}"
    else:  # stage 5 trains one on these
        folder = vae_style_dir(args)
        check_images(list_images(folder), f"VAE training styles in {folder}")
        vae_note = f"no VAE yet: styles in {folder} checked"
    log(f"checked the inputs of the style stages: VGG {vgg}, decoder {decoder}, {vae_note}, "
        f"{len(paths)} style image(s)")


def check_decoder_training(args, log=print):
    """train_style_modules.py --task finetune_decoder, before iteration 1."""
    _, channels = check_vgg(args.vgg)
    if args.decoder and args.decoder.lower() != "none":
        with contextlib.suppress(MissingWeightsError):  # none there: training starts from scratch
            check_decoder(args.decoder, channels)
    contents, styles = list_images_of(args.content_dir), list_images(args.style_dir)
    check_images(contents, f"content images in {args.content_dir}")
    check_images(styles, f"style images in {args.style_dir}")
    check_writable(args.save_dir)
    log(f"checked {len(contents)} content and {len(styles)} style images, the weights and {args.save_dir}")



def check_target_size(args, hwf):
    """The targets' size (the views' over --target_factor) holds the texture window
    (--style_patch, turned by any angle) and the encoder's three poolings."""
    from dataset.rays import scaled_hwf
    h, w, _ = scaled_hwf(hwf, args.target_factor)
    H, W = int(hwf[0]), int(hwf[1])
    if min(h, w) < 8:
        raise ValueError(f"--target_factor {args.target_factor}: targets of {w}x{h} pixels from {W}x{H} views; "
                         "expected at least 8 pixels a side")
    if args.style_patch_weight > 0:
        import math
        from pipeline.style_patch import window_span
        side = window_span(args.style_patch)  # the window turns
        if side > min(h, w):
            raise ValueError(f"--style_patch {args.style_patch} is larger than the targets ({w}x{h} at "
                             f"--target_factor {args.target_factor}) allow: a turned window needs {side} pixels "
                             f"a side; expected at most {int((min(h, w) - 1) / math.sqrt(2.0)) + 1}")


def available_memory():
    """Bytes of host memory available (MemAvailable; the free pages where /proc is missing)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_sample_cache(args, hwf, n_views, available=None):
    """--style_samples K: the cache (8 bytes a sample, K a pixel of every view at the targets'
    size, held in memory by the style stage) fits in the host memory available now."""
    if args.style_samples <= 0:
        return
    from dataset.rays import scaled_hwf
    h, w, _ = scaled_hwf(hwf, args.target_factor)
    need = int(n_views) * h * w * args.style_samples * 8
    available = available_memory() if available is None else available
    if need > 0.8 * available:
        raise ValueError(f"--style_samples {args.style_samples}: the sample cache of {n_views} views at {w}x{h} "
                         f"needs {need / 2**30:.1f} GB of host memory, {available / 2**30:.1f} GB are available; "
                         f"expected a smaller --style_samples or a larger --target_factor (or 0: no cache)")
