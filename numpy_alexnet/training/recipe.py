"""The run recipe: prepare the data, build the model by name, assemble optimizer and trainer.

``numpy-alexnet train``, ``eval`` and the studies all go through here, so a
run is put together one way:

    d = prepare_data("../shared/data/cifar10-jpeg.tar.gz", model_input_size("cifar_fig1"))
    net, device = place(build_model("cifar_fig1", 10, seed=0), "numpy", ())
    trainer = assemble(net, d, batch_size=128, seed=0, lr=0.01, momentum=0.9,
                       weight_decay=0.0005, backend="numpy", device=device)
    trainer.fit(10)

What a person can fix (data that do not fit a checkpoint, a checkpoint without
its configuration) is raised as :class:`~numpy_alexnet.training.errors.RunError`,
carrying the exit code; the command line prints its message and exits with it.
Models by name (``build_model``, ``model_input_size``) live in ``models.py``.
"""
from __future__ import annotations

import errno
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from ..files import atomic_write_text
from ..models import build_model, model_input_size  # noqa: F401  (part of the recipe)
from .errors import RunError, warn


# --------------------------------------------------------------------------- #
# The environment
# --------------------------------------------------------------------------- #
def library_versions() -> dict:
    """Versions of Python and of the libraries a run may use (None: not installed)."""
    from importlib import metadata
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("numpy", "numba", "pillow", "tqdm", "matplotlib"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    # CuPy ships as one wheel per CUDA version: cupy-cuda12x, cupy-cuda13x, ... (or 'cupy').
    cupys = sorted(d.metadata["Name"] for d in metadata.distributions()
                   if (d.metadata["Name"] or "").lower().startswith("cupy"))
    out["cupy"] = ", ".join(f"{n} {metadata.version(n)}" for n in cupys) or None
    from .. import __version__
    out["numpy-alexnet"] = __version__
    return out


def print_start(cmd: str, config: dict, key_lines=(), out=None) -> None:
    """A few lines at the start of a run (the whole configuration goes to :func:`write_config`).

    Printed: the command, the backend and why it was chosen (``config['backend_reason']``),
    whether the Numba kernels must be compiled first, then ``key_lines`` (the key
    settings, a line each).
    """
    from ..fast import numba_cache_note
    out = out or sys.stderr
    print(f"numpy-alexnet {cmd}", file=out)
    backend = config.get("backend")
    why = config.get("backend_reason")
    print(f"  backend {backend}" + (f" ({why})" if why else "")
          + (f", devices {config['devices']}" if config.get("devices") else ""), file=out)
    if backend == "numba":
        print(f"  {numba_cache_note()}", file=out)
    for line in key_lines:
        print(f"  {line}", file=out)
    out.flush()


def write_config(run_dir, cmd: str, config: dict) -> None:
    """RUN_DIR/config.json: the whole configuration and the library versions.

    Written once the command's checks have passed, so a refused command
    changes nothing in the run folder.
    """
    path = Path(run_dir) / "config.json"
    atomic_write_text(path, json.dumps({"command": cmd, "config": config,
                                        "versions": library_versions()},
                                       indent=1, sort_keys=True, default=str))
    print(f"  full configuration and library versions: {path}", file=sys.stderr, flush=True)


def choose_backend(args) -> None:
    """Resolve ``--backend auto`` in place: ``args.backend`` becomes the backend run on
    (numba where Numba imports, else numpy), ``args.backend_reason`` says why."""
    from ..backend import resolve_backend
    args.backend, args.backend_reason = resolve_backend(args.backend)


def devices_problem(backend: str, devices) -> str | None:
    """Why --devices does not fit --backend (GPUs are for cupy only), or None."""
    if devices and backend != "cupy":
        return (f"--devices {devices}: GPU indexes apply to --backend cupy only, and this "
                f"command runs --backend {backend}; drop --devices or add --backend cupy")
    return None


def mover(backend: str, device):
    """The function that puts a batch on ``device`` (None: batches stay host arrays)."""
    if backend != "cupy":
        return None
    from ..backend import move_array
    return lambda a: move_array(a, backend, device)


def place(net, backend: str, devices: tuple):
    """net.to(backend, device): one device, or the towers' devices where supported."""
    from ..backend import get_ops
    get_ops(backend)                              # a clear BackendUnavailable now, not mid-run
    if len(devices) > 1:
        try:
            return net.to(backend, devices), devices[0]
        except (TypeError, ValueError) as err:
            raise ValueError(f"--devices {','.join(map(str, devices))}: this network cannot be "
                             f"split over several devices here ({err}); give one device") from err
    device = devices[0] if devices else None
    return net.to(backend, device), device


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
def data_identity(data: str) -> dict:
    """Which data a run trains on, by content: what ``--resume`` and the studies compare.

    The size and SHA-256 of the file (a folder: a hash of its files' names,
    sizes and SHA-256s), as the cache of decoded images keys it: the same
    archive or folder under another path, copied, or on another machine is the
    same data.
    """
    from ..data.cache import source_fingerprint
    from ..data.sources import resolve_source
    return source_fingerprint(resolve_source(data, None))


def pixel_std(images: np.ndarray, mean: np.ndarray, chunk: int = 2000) -> float:
    """Standard deviation of the mean-subtracted pixels of ``images`` (uint8 (N, 3, H, W))."""
    total, count = 0.0, 0
    for s in range(0, len(images), chunk):
        d = images[s:s + chunk].astype(np.float32) - mean          # (n, 3, H, W)
        total += float(np.square(d, dtype=np.float64).sum())
        count += d.size
    return float(np.sqrt(total / count))


def subset_indices(n: int, k: int | None, seed: int = 0) -> np.ndarray:
    """The first ``k`` of a fixed permutation of range(n), sorted (all of them if k is None)."""
    if k is not None and k < 1:
        raise ValueError(f"subset size must be at least 1 (or None for all {n}), got {k}")
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:k])


class PlainTransform:
    """uint8 (N, 3, H, W) -> float32 (x - mean) * scale, centre-cropped to ``size`` if smaller."""

    def __init__(self, mean, size: int, scale: float = 1.0):
        from ..data import EvalTransform
        self._t = EvalTransform(mean, size if size != mean.shape[-1] else None, "center", scale)

    def __call__(self, x, rng=None):
        return self._t(x, rng)


def cache_usable() -> bool:
    """Whether the dataset cache folder can be written; if not, a warning (it is a speed-up)."""
    from ..data import default_cache_dir
    from .runfiles import probe_writable
    folder = default_cache_dir()
    problem = probe_writable(folder)
    if problem:
        warn(f"the dataset cache {folder} cannot be used ({problem}); going on without "
             "it: the images are decoded again on every run")
    return problem is None


def load_data(data: str, **kwargs):
    """``load_dataset`` with the cache when it can be written, without it when it cannot.

    A cache that fails while being written (a full disk) costs a second decoding,
    not the run.
    """
    from ..data import load_dataset
    from .runfiles import remove_stale_cache_temps
    if not cache_usable():
        return load_dataset(data, use_cache=False, **kwargs)
    remove_stale_cache_temps()
    try:
        return load_dataset(data, **kwargs)
    except OSError as err:
        _cache_failed(err)
        return load_dataset(data, use_cache=False, **kwargs)


def data_stats(ds, progress: bool = True):
    """``ds.stats()`` (mean image, RGB PCA), computed without the cache if it cannot be written.

    progress: the bar of a folder's streamed pass (one in RAM is quick and draws none).
    """
    from ..data import ImageFolder
    if isinstance(ds, ImageFolder):
        return ds.stats(progress=progress)            # a cache it cannot write: a warning
    try:
        return ds.stats()
    except OSError as err:
        _cache_failed(err)
        ds.cache_path = None                          # stats() then writes nothing
        return ds.stats()


# Decoded arrays up to this share of the memory available stay in RAM; larger sets stream.
IN_MEMORY_SHARE = 1 / 8


def memory_available() -> int | None:
    """Bytes of memory available for new work (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024          # given in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def choose_stream(data, resize, limit_per_class, stream: bool | None) -> tuple[bool, str | None]:
    """(whether to stream the data from disk, why), for --stream (True), --no-stream (False)
    or neither (None).

    Neither: a set whose decoded arrays would take more than an eighth of the
    memory available streams, if it is an image-folder directory; an archive
    (which cannot be read at random) stops the run before decoding.  An eighth,
    because the in-RAM path peaks at about twice the arrays (decoding, then
    writing them to the cache), and the rest is left to the network, its
    batches and the machine's other work.  Counted without decoding
    (``data.datasets.decoded_size``).
    """
    if stream is not None:
        return stream, None
    from ..data.datasets import decoded_size
    from ..data.sources import resolve_source, source_kind
    available = memory_available()
    if available is None:
        return False, None
    n, size = decoded_size(data, resize, limit_per_class)
    if size <= available * IN_MEMORY_SHARE:
        return False, None
    why = (f"{n:,} images decode to {_gb(size)}, more than an eighth of the {_gb(available)} "
           "of memory available")
    src = resolve_source(data, None)
    if src.is_dir() and source_kind(src) == "image-folder":
        return True, f"streams: {why} (--no-stream decodes them into RAM anyway)"
    raise RunError(f"{data}: {why}, and an archive cannot be streamed: unpack it "
                   f"(tar xf {src.name} -C DIR) and give DIR, or add --no-stream to decode it "
                   "into RAM anyway")


def _gb(n: int) -> str:
    """A size for a message: '3.9 GB', '36.9 MB' or '36,864 bytes'."""
    if n >= 1e8:
        return f"{n / 1e9:.1f} GB"
    if n >= 1e5:
        return f"{n / 1e6:.3g} MB"
    return f"{n:,} bytes"


CACHE_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                      errno.ENOTDIR, errno.EEXIST)


def _cache_failed(err: OSError) -> None:
    """Re-raise ``err`` unless it is the cache failing to be written; then a warning."""
    if isinstance(err, FileNotFoundError) or err.errno not in CACHE_WRITE_ERRORS:
        raise err
    warn(f"writing the dataset cache failed ({err.strerror or err}); going on without it")


def prepare_data(data: str, model_input: int, *, resize=None, limit_per_class=None, subset=None,
                 val_subset=None, input_scale: str = "raw", augment: str = "none",
                 eval_crops: str = "center", val_split: str | None = None, progress=True,
                 stream: bool = False, workers: int = 2):
    """Load ``data`` and make the transforms: a dict with everything a run needs.

    input_scale 'raw': pixels 0-255 minus the mean image (the paper, cuda-convnet);
    'unit': that divided by the pixels' standard deviation (unit variance).
    augment 'none', 'flip' (random crops and reflections) or 'paper' (also PCA colour).
    stream: read an image-folder directory from disk a batch at a time, decoded in
    ``workers`` processes (``data.ImageFolder``), instead of decoding it all into
    RAM: for sets too large for memory, as ImageNet at 256x256.  The batches are
    the same either way.  ``d["train"]`` and ``d["val"]`` are the splits (arrays in
    RAM or files on disk); in RAM, ``x_train``/``y_train`` (and ``x_val``/``y_val``)
    are their arrays.
    """
    from ..data import EvalTransform, ImageFolder
    if stream:
        ds = ImageFolder(data, resize=resize, limit_per_class=limit_per_class)
    else:
        ds = load_data(data, resize=resize, limit_per_class=limit_per_class, progress=progress)
    if val_split is None:
        val_split = next((s for s in ("val", "valid", "validation", "test") if s in ds.splits), None)
    st = data_stats(ds, progress)
    mean = st.mean_image.astype(np.float32)
    H = ds.train.image_size[0]
    S = int(model_input)
    if S > H:
        raise ValueError(f"the model takes {S}x{S} inputs but the images are {H}x{H}; "
                         f"rescale them (e.g. --resize 256 for AlexNet)")
    train = ds.train if subset is None else ds.train.subset(subset_indices(len(ds.train), subset))
    scale = _input_scale(input_scale, train if stream else train.images, mean)
    train_tf = _train_transform(augment, mean, S, scale, st)
    mode = "full" if S == H else ("ten" if eval_crops == "ten" else "center")
    val_tf = EvalTransform(mean, None if S == H else S, mode, scale)
    out = {"dataset": ds, "classes": ds.classes, "train": train, "val": None,
           "train_transform": train_tf, "val_transform": val_tf, "mean_image": mean,
           "scale": float(scale), "image_size": H, "val_split": val_split, "eval_mode": mode,
           "train_size": len(ds.train), "val_size": None, "stream": stream, "workers": workers}
    if not stream:
        out["x_train"], out["y_train"] = train.images, train.labels
    if val_split:
        full_val = ds[val_split]
        out["val"] = full_val if val_subset is None else full_val.subset(
            subset_indices(len(full_val), val_subset))
        out["val_size"] = len(full_val)
        if not stream:
            out["x_val"], out["y_val"] = out["val"].images, out["val"].labels
    return out


def _input_scale(input_scale: str, x_train, mean) -> float:
    if input_scale == "raw":
        return 1.0
    if input_scale == "unit":
        return 1.0 / pixel_std(x_train, mean)
    raise ValueError(f"unknown input scale {input_scale!r}; expected 'raw' or 'unit'")


def _train_transform(augment: str, mean, size: int, scale: float, st):
    from ..data import TrainTransform
    if augment == "none":
        return PlainTransform(mean, size, scale)
    if augment in ("flip", "paper"):
        pca = (st.eigvals, st.eigvecs) if augment == "paper" else (None, None)
        return TrainTransform(mean, size, pca[0], pca[1], scale=scale)
    raise ValueError(f"unknown augmentation {augment!r}; expected 'none', 'flip' or 'paper'")


def name_list(classes, most: int = 20) -> str:
    """A class list for a message: all of it, or its first ``most`` names and the count."""
    classes = list(classes)
    if len(classes) <= most:
        return str(classes)
    return str(classes[:most])[:-1] + f", ...] ({len(classes)} in all)"


def class_difference(trained, found, checkpoint, data) -> str | None:
    """Why data with classes ``found`` does not fit a net trained on ``trained``, or None.

    Output i of the network means class ``trained[i]``; label i of the data means
    ``found[i]``.  Only the same names in the same order make those agree.
    """
    trained, found = list(trained), list(found)
    if trained == found:
        return None
    detail = []
    only_trained = [c for c in trained if c not in found]
    if only_trained:
        detail.append(f"only in the checkpoint: {name_list(only_trained, 10)}")
    only_found = [c for c in found if c not in trained]
    if only_found:
        detail.append(f"only in the data: {name_list(only_found, 10)}")
    return (f"{checkpoint} was trained on classes {name_list(trained)} but {data} has "
            f"{name_list(found)} ({'; '.join(detail) or 'the same names in another order'}); "
            "the network's outputs stand for the checkpoint's classes, in its order")


def note_no_classes(checkpoint) -> None:
    print(f"  note: {checkpoint} does not record its class names (written by an older "
          "version); taking them to be the data's", file=sys.stderr)


def check_classes(config: dict, found, num_classes: int, checkpoint, data) -> None:
    """Refuse data whose classes are not the checkpoint's (``config['classes']``)."""
    if "classes" not in config:
        note_no_classes(checkpoint)
        if len(found) > num_classes:
            raise RunError(f"{data} has {len(found)} classes but the network of "
                           f"{checkpoint} has {num_classes} outputs")
        return
    problem = class_difference(config["classes"], found, checkpoint, data)
    if problem:
        raise RunError(problem)


def run_config(meta: dict, path) -> dict:
    """The training configuration in a checkpoint's metadata, or a RunError saying it is missing."""
    config = meta.get("config")
    if not isinstance(config, dict) or "model" not in config:
        raise RunError(f"{path}: its metadata hold no training configuration (no 'config' with "
                       "a 'model'); expected a checkpoint written by `numpy-alexnet train`")
    return config


# --------------------------------------------------------------------------- #
# Optimizer and trainer
# --------------------------------------------------------------------------- #
def eval_batch_size(batch_size: int, crops: str) -> int:
    """Images a test batch: a tenth of ``batch_size`` for ten crops an image, so that a batch
    of crops is the size of a training batch."""
    return max(1, batch_size // 10) if crops == "ten" else batch_size


def assemble(net, d: dict, *, batch_size: int, seed: int, lr: float, momentum: float,
             weight_decay: float, backend: str, device, lr_mults=None, decay_mults=None,
             schedule=None, trainer_class=None,
             validate: bool = True, **trainer_kw):
    """The batches of ``d`` (from :func:`prepare_data`), momentum SGD and the Trainer.

    trainer_class: a Trainer subclass to build instead (the study's windowed runs).

    validate: evaluate ``d``'s validation images after every epoch (if it has any).
    ``trainer_kw`` go to :class:`~numpy_alexnet.training.Trainer` as they are.
    """
    from ..data import batch_iterator
    from ..optim import MomentumSGD
    from .trainer import FixedSchedule, Trainer
    to_device = mover(backend, device)
    workers = d.get("workers", 2)                 # used only by splits streamed from disk
    train_batches = batch_iterator(d["train"], batch_size, workers=workers, shuffle=True,
                                   seed=seed, transform=d["train_transform"], to_device=to_device)
    val_batches = None
    if validate and d.get("val") is not None:
        eval_bs = eval_batch_size(batch_size, d["eval_mode"])

        def val_batches():
            return batch_iterator(d["val"], eval_bs, workers=workers, shuffle=False,
                                  transform=d["val_transform"], to_device=to_device)
    opt = MomentumSGD(net, lr=lr, momentum=momentum, weight_decay=weight_decay,
                      lr_mults=lr_mults, decay_mults=decay_mults)
    trainer_class = trainer_class or Trainer
    return trainer_class(net, opt, train_batches, val_batches=val_batches,
                         schedule=schedule if schedule is not None else FixedSchedule(),
                         **trainer_kw)


# --------------------------------------------------------------------------- #
# One split, for eval: classes first, then only the images evaluated
# --------------------------------------------------------------------------- #
def dataset_classes(data) -> tuple | None:
    """The class names of an image folder from its folder names, decoding no image.

    None for a CIFAR-10 python release (its names are inside its batches).
    """
    from ..data.sources import folder_layout, resolve_source, scan_dir, shared_classes, source_kind
    src = resolve_source(data, None)
    if source_kind(src) == "cifar10-python":
        return None
    files, dirs = scan_dir(src) if src.is_dir() else _scan_tar_split(src, None)
    return shared_classes(src, folder_layout(src, files, dirs))


def _scan_tar_split(src: Path, split: str | None) -> tuple[dict, set]:
    """sources.scan_tar keeping the bytes of ``split``'s images only (None: no bytes at all)."""
    from ..data.sources import scan_tar

    def keep(name: str) -> bool:
        parts = name.split("/")                              # [root/]split/class/image
        return split is not None and len(parts) >= 3 and parts[-3] == split
    return scan_tar(src, progress=False, keep=keep)


def load_split(data, split: str, *, resize=None, limit_per_class=None, progress=True):
    """``load_dataset(data, ...)[split]``, decoding only that split's images.

    From the dataset cache when it holds these images; else an image folder's
    ``split`` alone is decoded (and not cached).  CIFAR-10's python arrays are
    read whole: they are small.
    """
    from ..data import DataError, Split
    from ..data.cache import cache_path
    from ..data.decode import decode_all
    from ..data.sources import (display_name, folder_layout, resolve_source, scan_dir,
                                shared_classes, source_kind)
    src = resolve_source(data, None)
    kind = source_kind(src)
    params = {"kind": kind, "resize": resize, "limit_per_class": limit_per_class}
    if kind == "cifar10-python" or cache_path(src, params, None).exists():
        return load_data(data, resize=resize, limit_per_class=limit_per_class,
                         progress=progress)[split]
    files, dirs = scan_dir(src) if src.is_dir() else _scan_tar_split(src, split)
    layout = folder_layout(src, files, dirs)                  # {split: {class: [relpath]}}
    classes = shared_classes(src, layout)
    if split not in layout:
        raise DataError(f"{src}: no split {split!r}; it has {sorted(layout)}")
    items = [(label, p) for label, c in enumerate(classes)
             for p in sorted(layout[split][c])[:limit_per_class]]
    images = decode_all([files[p] for _, p in items], [display_name(src, p) for _, p in items],
                        resize, progress, None)              # uint8 (N, 3, H, W)
    labels = np.array([label for label, _ in items], dtype=np.int64)
    return Split(images, labels, classes, split)
