"""The experiment folder: where a run's config, checkpoints and renders live."""
import os
import shutil


def experiment_dir(args, create=True):
    """`<basedir>/<expname>`; on creation the config and the full option list are copied in."""
    path = os.path.join(args.basedir, args.expname)
    if create:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "args.txt"), "w") as f:
            for k in sorted(vars(args)):
                f.write(f"{k} = {getattr(args, k)}\n")
        if args.config:
            shutil.copyfile(args.config, os.path.join(path, "config.txt"))
    return path


def is_partial(name):
    """Whether a file name is that of a write in progress (`*.tmp`, `*.tmp.npz`): finished files
    are never named so."""
    return name.endswith(".tmp") or ".tmp." in name


def remove_partial_files(folder):
    """Delete `*.tmp` / `*.tmp.npz` files a kill left mid-write (decoder.pkl.tmp, the VAE's
    statistics cache, ...).  Training runs only: a render beside a training run must not delete
    the file it is writing."""
    for name in os.listdir(folder):
        if is_partial(name):
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                os.remove(p)
