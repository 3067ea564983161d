"""The evaluation's rendered frames, one .npz a frame in <expdir>/eval/frames/, so that an
evaluation cut short (a time limit, Ctrl-C, a lost machine) resumes at the first frame it had
not rendered: the renders are most of its time (104 s of 123 s for fern_cpu on a 2-core CPU).
Each frame keeps its fine RGB, depth and opacity as float32, so that a resumed evaluation reports exactly
what an uncut one would.  The folder is keyed (core/cache_key.py) by the NeRF and style
checkpoints, the path, the size and the render options: a change renders every frame again.  A
finished report removes the folder: 3 MB a frame at 504x378, 12 MB a path frame for fern with
three styles, 0.75 GB for its 60 path frames.  A frame that cannot be written (a full disk), or
that would leave less than KEEP_FREE on its disk, only turns the cache off, with a warning: the
evaluation itself goes on.
Each style's finished measures (its table rows, its strip's file name and its log lines) are kept
beside the frames as measures_<style>.json, keyed further by the 2D networks and the style image,
so that a resumed evaluation also skips the styles it had measured: on the GPU those measures, not
the renders, are most of a style's time (one H100, 2026-12-07: a rerun of a cut three-style
evaluation of fern's 30 path frames, every frame kept, spent most of its 90 s measuring again the
two styles it had finished, and its time limit ended it again in the third).
"""
import contextlib
import json
import os
import shutil

from core.cache_key import array_digest, file_stamp, read_key, refresh, write_key
from core.interrupt import WorkInterrupted
from core.npz_cache import read_arrays, write_arrays
from core.oserrors import describe
from pipeline.experiment import remove_partial_files


KEEP_FREE = 2 * 2**30  # bytes the frames leave free on their disk, for the report and the runs beside


class FrameCache:
    """Frames of named groups ("photo", "heldout_3", "style_la_muse.jpg", ...) kept in `folder`,
    valid while `inputs` (a JSON-able dict: what the frames depend on) stays the same."""

    def __init__(self, folder, inputs, log=print):
        self.folder, self.log = folder, log
        os.makedirs(folder, exist_ok=True)
        remove_partial_files(folder)  # a frame a kill left half written
        self.reused, self.on = 0, True
        self._fresh = set()  # frames this run put: reading them back is no reuse of an earlier run's
        refresh(os.path.join(folder, "key.json"), inputs, clear=self._clear, what="evaluation frame cache",
                log=log)

    def _frame_files(self):
        return [os.path.join(self.folder, n) for n in os.listdir(self.folder)
                if n.endswith(".npz") and ".tmp." not in n]

    def _clear(self):
        for path in self._frame_files() + self._measure_files():
            os.remove(path)

    def _measure_files(self):
        return [os.path.join(self.folder, n) for n in os.listdir(self.folder)
                if n.startswith("measures_") and n.endswith(".json")]

    @staticmethod
    def _safe(name):
        return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)

    def _path(self, group, t):
        return os.path.join(self.folder, f"{self._safe(group)}_{t:04d}.npz")

    def _measures_path(self, name):
        return os.path.join(self.folder, f"measures_{self._safe(name)}.json")

    def get_measures(self, name, inputs):
        """The measures put for name with these inputs (JSON-able), else None."""
        if not self.on:
            return None
        kept = read_key(self._measures_path(name), self.log, "evaluation measures")
        if not kept or kept.get("inputs") != json.loads(json.dumps(inputs)):
            return None
        return kept["measures"]

    def put_measures(self, name, inputs, measures):
        """Keep a finished style's measures (JSON-able) until the report is written."""
        if not self.on:
            return
        try:
            write_key(self._measures_path(name), {"inputs": inputs, "measures": measures})
        except OSError as e:
            self.log(f"warning: cannot keep the measures of {name} ({describe(e)}); a cut evaluation "
                     f"will measure that style again")

    def get(self, group, t, H, W):
        """(rgb [H,W,3], depth [H,W], acc [H,W]) of frame t of group, or None (not rendered yet, or
        damaged)."""
        if not self.on:
            return None
        path = self._path(group, t)
        got = read_arrays(path, {"rgb": (H, W, 3), "depth": (H, W), "acc": (H, W)}, "evaluation frame", self.log)
        if got is None:
            return None
        self.reused += path not in self._fresh
        return got["rgb"], got["depth"], got["acc"]

    def has(self, group, t):
        """Whether frame t of group is kept (not read: get checks it)."""
        return self.on and os.path.exists(self._path(group, t))

    def put(self, group, t, rgb, depth, acc):
        if not self.on:
            return
        try:
            free = shutil.disk_usage(self.folder).free
            if free - rgb.nbytes - depth.nbytes - acc.nbytes < KEEP_FREE:
                self._off(f"{self.folder}: {free / 2**30:.1f} GB free, and the frames leave at least "
                          f"{KEEP_FREE / 2**30:.0f} GB to the rest of the run")
                return
            path = self._path(group, t)
            write_arrays(path, {"rgb": rgb, "depth": depth, "acc": acc})
            self._fresh.add(path)
        except OSError as e:
            self._off(describe(e))

    def _off(self, why):
        self.on = False
        self.log(f"warning: cannot keep the rendered frames ({why}); evaluating without them, "
                 f"so a cut evaluation will render them all again")

    @contextlib.contextmanager
    def kept_on_interrupt(self):
        """Ctrl-C inside the block: WorkInterrupted with one line naming the frames kept."""
        try:
            yield
        except KeyboardInterrupt:
            raise WorkInterrupted(f"evaluation interrupted; the {len(self._frame_files())} frames rendered so far are kept in "
                                  f"{self.folder}. Run the same command again to resume.") from None

    def remove(self):
        """The report is written: the frames are no longer needed."""
        shutil.rmtree(self.folder, ignore_errors=True)


def frame_inputs(nerf_path, style_path, poses, hwf, opts, style_opts, args, held_out, scene_hwf):
    """What every cached frame depends on (FrameCache's key)."""
    H, W, focal = hwf
    return {"nerf": [os.path.basename(nerf_path), file_stamp(nerf_path)],
            "style": [os.path.basename(style_path), file_stamp(style_path)] if style_path else None,
            "poses": array_digest([poses]), "hwf": [int(H), int(W), float(focal)],
            "held_out": [int(i) for i in held_out], "scene_hwf": [float(v) for v in scene_hwf],
            "opts": repr(opts), "style_opts": repr(style_opts), "render_mode": args.render_mode,
            "use_viewdir": bool(args.use_viewdir), "ndc": not args.no_ndc, "arrays": ["rgb", "depth", "acc"]}
