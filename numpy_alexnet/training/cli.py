"""``numpy-alexnet train | eval | relu-vs-tanh``.

    numpy-alexnet train --model cifar_fig1_relu --data ../shared/data/cifar10-jpeg.tar.gz \\
        --epochs 10 --lr 0.001 --weight-decay 0 --schedule fixed --out runs/fig1
    numpy-alexnet train --model alexnet --data FOLDER --resize 256 --out runs/alexnet
    numpy-alexnet train ... --resume                 # go on from runs/.../checkpoints/latest.npz
    numpy-alexnet eval runs/alexnet/checkpoints/best.npz --data FOLDER --crops ten
    numpy-alexnet relu-vs-tanh --quick --data ../shared/data/cifar10-jpeg.tar.gz

``register(subparsers)`` adds the three commands; each handler returns an exit
code: 0 done, 1 a data/checkpoint/backend problem, 2 bad arguments, 3 the
non-finite guard stopped the run.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ..argtypes import integer, number

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NONFINITE = 0, 1, 2, 3

# The files of a run in OUT; a new run there would replace them.
RUN_FILES = ("checkpoints/latest.npz", "checkpoints/best.npz", "metrics.json", "metrics.csv",
             "steps.csv")

# Keys of the configuration that a resumed run must share with its checkpoint: it goes on
# bit for bit with the checkpoint's weights, velocities, learning rate and schedule, so a
# new --lr, --momentum, --weight-decay or --patience would be ignored: refused instead.
RESUME_MUST_MATCH = ("model", "data", "resize", "limit_per_class", "subset", "batch_size", "seed",
                     "input_scale", "init", "augment", "schedule", "num_classes",
                     "lr", "momentum", "weight_decay", "patience")


def _err(cmd: str, msg: str) -> None:
    print(f"numpy-alexnet {cmd}: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# Shared pieces: environment, data, model
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
    from ..backend import numba_cache_note
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
    from .checkpoint import atomic_write_text
    path = Path(run_dir) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"command": cmd, "config": config,
                                        "versions": library_versions()},
                                       indent=1, sort_keys=True, default=str))
    print(f"  full configuration and library versions: {path}", file=sys.stderr, flush=True)


def choose_backend(args) -> None:
    """Resolve ``--backend auto`` in place: ``args.backend`` becomes the backend run on."""
    from ..backend import resolve_backend
    args.backend, args.backend_reason = resolve_backend(args.backend)


def fig1_weight_stds(init: str) -> tuple:
    """conv1, conv2, conv3, fc10 initial standard deviations of the Figure-1 net.

    'cuda-convnet': layers-80sec.cfg's (1e-4, 1e-2, 1e-2, 1e-2), made for raw
    0-255 inputs.  'fan-in': 1/sqrt(fan-in) (LeCun), made for unit-variance
    inputs: conv1 sees 5*5*3 = 75 inputs, conv2 and conv3 5*5*32 = 800, fc10
    3*3*64 = 576.
    """
    from ..models import CUDA_CONVNET_STDS
    if init == "cuda-convnet":
        return CUDA_CONVNET_STDS
    if init == "fan-in":
        return tuple(float(1 / np.sqrt(f)) for f in (75, 800, 800, 576))
    raise ValueError(f"unknown init {init!r}; expected 'cuda-convnet' or 'fan-in'")


def build_model(name: str, num_classes: int, seed: int, init: str | None = None):
    from ..models import MODELS, cifar_fig1, get_model
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(sorted(MODELS))}")
    if name.startswith("cifar_fig1"):
        act = {"cifar_fig1": "relu", "cifar_fig1_relu": "relu", "cifar_fig1_tanh": "tanh"}[name]
        return cifar_fig1(act, num_classes=num_classes, seed=seed,
                          weight_stds=fig1_weight_stds(init or "cuda-convnet"))
    if name == "alexnet":
        from ..models import ALEXNET_INITS
        if init not in (None, "default", *ALEXNET_INITS):
            raise ValueError(f"--init {init}: alexnet takes {' or '.join(sorted(ALEXNET_INITS))}")
        return get_model(name, num_classes=num_classes, seed=seed,
                         init="paper" if init in (None, "default") else init)
    if init not in (None, "default"):
        raise ValueError(f"--init {init} applies to the cifar_fig1 and alexnet models; "
                         f"{name} uses the paper's")
    return get_model(name, num_classes=num_classes, seed=seed)


def model_input_size(name: str) -> int:
    """The input height and width of a named model, without building it."""
    from ..models import MODELS
    sizes = {"alexnet": 227, "alexnet_torchvision": 224}
    if name in sizes:
        return sizes[name]
    if name.startswith("cifar_fig1"):
        return 32
    return MODELS[name]().input_shape[-1]             # a model added later: build it once


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


def prepare_data(data: str, model_input: int, *, resize=None, limit_per_class=None, subset=None,
                 val_subset=None, input_scale: str = "raw", augment: str = "none",
                 eval_crops: str = "center", val_split: str | None = None, progress=True):
    """Load ``data`` and make the transforms: a dict with everything a run needs.

    input_scale 'raw': pixels 0-255 minus the mean image (the paper, cuda-convnet);
    'unit': that divided by the pixels' standard deviation (unit variance).
    augment 'none', 'flip' (random crops and reflections) or 'paper' (also PCA colour).
    """
    from ..data import EvalTransform, TrainTransform, load_dataset
    ds = load_dataset(data, resize=resize, limit_per_class=limit_per_class, progress=progress)
    train = ds.train
    if val_split is None:
        val_split = next((s for s in ("val", "valid", "validation", "test") if s in ds.splits), None)
    val = ds[val_split] if val_split else None
    st = ds.stats()
    mean = st.mean_image.astype(np.float32)
    H = train.image_size[0]
    S = int(model_input)
    if S > H:
        raise ValueError(f"the model takes {S}x{S} inputs but the images are {H}x{H}; "
                         f"rescale them (e.g. --resize 256 for AlexNet)")
    tr_idx = subset_indices(len(train), subset)
    x_train, y_train = train.images[tr_idx], train.labels[tr_idx]
    if input_scale == "raw":
        scale = 1.0
    elif input_scale == "unit":
        scale = 1.0 / pixel_std(x_train, mean)
    else:
        raise ValueError(f"unknown input scale {input_scale!r}; expected 'raw' or 'unit'")
    if augment == "none":
        train_tf = PlainTransform(mean, S, scale)
    elif augment in ("flip", "paper"):
        pca = (st.eigvals, st.eigvecs) if augment == "paper" else (None, None)
        train_tf = TrainTransform(mean, S, pca[0], pca[1], scale=scale)
    else:
        raise ValueError(f"unknown augmentation {augment!r}; expected 'none', 'flip' or 'paper'")
    mode = "full" if S == H else ("ten" if eval_crops == "ten" else "center")
    val_tf = EvalTransform(mean, None if S == H else S, mode, scale)
    out = {"dataset": ds, "classes": ds.classes, "x_train": x_train, "y_train": y_train,
           "train_transform": train_tf, "val_transform": val_tf, "mean_image": mean,
           "scale": float(scale), "image_size": H, "val_split": val_split, "eval_mode": mode}
    if val is not None:
        v_idx = subset_indices(len(val), val_subset)
        out["x_val"], out["y_val"] = val.images[v_idx], val.labels[v_idx]
    return out


def _names(classes, most: int = 20) -> str:
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
        detail.append(f"only in the checkpoint: {_names(only_trained, 10)}")
    only_found = [c for c in found if c not in trained]
    if only_found:
        detail.append(f"only in the data: {_names(only_found, 10)}")
    return (f"{checkpoint} was trained on classes {_names(trained)} but {data} has "
            f"{_names(found)} ({'; '.join(detail) or 'the same names in another order'}); "
            "the network's outputs stand for the checkpoint's classes, in its order")


def _note_no_classes(checkpoint) -> None:
    print(f"  note: {checkpoint} does not record its class names (written by an older "
          "version); taking them to be the data's", file=sys.stderr)


def _parse_list(s: str | None) -> tuple:
    return tuple(x.strip() for x in s.split(",") if x.strip()) if s else ()


def _parse_lr_mults(s: str | None) -> dict | None:
    """'fc8=10,conv1=0.1' -> {'fc8': 10.0, 'conv1': 0.1}; None for none (checked by lr_mult_list)"""
    if not s:
        return None
    return {name.strip(): float(val) for name, _, val in
            (item.partition("=") for item in _parse_list(s))}


def _devices_problem(args) -> str | None:
    """Why --devices does not fit --backend (GPUs are for cupy only), or None."""
    if args.devices and args.backend != "cupy":
        return (f"--devices {args.devices}: GPU indexes apply to --backend cupy only, and this "
                f"command runs --backend {args.backend}; drop --devices or add --backend cupy")
    return None


def _mover(backend: str, device):
    if backend != "cupy":
        return None
    from ..backend import move_array
    return lambda a: move_array(a, backend, device)


def _place(net, backend: str, devices: tuple):
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
# train
# --------------------------------------------------------------------------- #
def _train_config(args) -> dict:
    keys = ("model", "data", "resize", "limit_per_class", "subset", "val_subset", "num_classes",
            "backend", "devices", "epochs", "batch_size", "lr", "momentum", "weight_decay",
            "schedule", "patience", "seed", "input_scale", "init", "augment", "eval_crops",
            "checkpoint_every", "max_steps", "time_limit", "init_from", "reinit", "freeze", "lr_mult")
    return {k: getattr(args, k, None) for k in keys}


def _train(args) -> int:
    from ..backend import BackendUnavailable
    from ..data import BatchIterator, DataError
    from ..optim import MomentumSGD
    from .checkpoint import CheckpointError, read_checkpoint
    from .trainer import FixedSchedule, NonFiniteLossError, PaperSchedule, Trainer

    cmd = "train"
    choose_backend(args)
    problem = _devices_problem(args)
    if problem:
        _err(cmd, problem)
        return EXIT_USAGE
    out = Path(args.out)
    devices = tuple(int(d) for d in _parse_list(args.devices))
    args.devices = list(devices)
    # Defaults that depend on the model: the paper's recipe for AlexNet.
    is_alexnet = args.model.startswith("alexnet")
    if args.augment is None:
        args.augment = "paper" if is_alexnet else "none"
    if args.eval_crops is None:
        args.eval_crops = "ten" if is_alexnet else "center"
    if args.resize is None and is_alexnet and args.data:
        args.resize = 256
    config = _train_config(args)
    config["backend_reason"] = args.backend_reason

    # Refuse before anything is loaded or written: a file in the way, or a run already there.
    if out.exists() and not out.is_dir():
        _err(cmd, f"--out {out} is a file; expected a folder to write the run into")
        return EXIT_USAGE
    earlier = [f for f in RUN_FILES if (out / f).exists()]
    if earlier and not args.resume:
        _err(cmd, f"--out {out} already holds a run ({', '.join(earlier)}); pass --resume to "
                  "continue it, or choose another --out")
        return EXIT_USAGE

    resume_path = None
    if args.resume:
        # OUT's latest checkpoint, a checkpoint file, or the latest checkpoint of a run folder.
        resume_path = Path(args.resume)
        if args.resume == "latest" or resume_path.is_dir():
            run_dir = out if args.resume == "latest" else resume_path
            resume_path = run_dir / "checkpoints" / "latest.npz"
            if not resume_path.is_file():
                _err(cmd, f"--resume: {run_dir} holds no run (no checkpoints/latest.npz); "
                          "expected a run folder or a checkpoint file")
                return EXIT_ERROR
        try:
            meta = read_checkpoint(resume_path)["meta"]
        except CheckpointError as err:
            _err(cmd, f"--resume: {err}")
            return EXIT_ERROR
        saved = meta["config"]
        diff = [k for k in RESUME_MUST_MATCH if saved.get(k) != config.get(k)]
        if diff:
            _err(cmd, "--resume: the checkpoint was made with different settings: " + "; ".join(
                f"{k}: checkpoint {saved.get(k)!r}, now {config.get(k)!r}" for k in diff)
                + " (a resumed run goes on bit for bit with its own settings: give the same ones)")
            return EXIT_USAGE
        if meta["epoch"] >= args.epochs or (args.max_steps is not None
                                            and meta["step"] >= args.max_steps):
            limits = f"--epochs {args.epochs}" + (f", --max-steps {args.max_steps}"
                                                  if args.max_steps is not None else "")
            print(f"numpy-alexnet train: {resume_path} has trained {meta['epoch']} epochs "
                  f"({meta['step']} steps) and {limits} asks for no more: nothing to do, "
                  "nothing written", file=sys.stderr)
            return EXIT_OK
    print_start(cmd, config, [
        f"model {args.model}, data {args.data}" + (f", subset {args.subset}" if args.subset else ""),
        f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr:g} ({args.schedule} "
        f"schedule), momentum {args.momentum:g}, weight decay {args.weight_decay:g}, seed "
        f"{args.seed}", f"writes to {out}"])

    try:
        from ..models import MODELS
        if args.model not in MODELS:
            raise ValueError(f"unknown model {args.model!r}; expected one of {', '.join(sorted(MODELS))}")
        if args.init == "kaiming" and args.input_scale != "unit":
            # N(0, std sqrt(2/fan-in)) keeps the inputs' scale through the layers: raw 0-255
            # pixels (standard deviation ~60) would give logits in the tens.
            raise ValueError("--init kaiming is made for unit-variance inputs; "
                             "add --input-scale unit")
        t0 = time.perf_counter()
        d = prepare_data(args.data, model_input_size(args.model), resize=args.resize,
                         limit_per_class=args.limit_per_class, subset=args.subset,
                         val_subset=args.val_subset, input_scale=args.input_scale,
                         augment=args.augment, eval_crops=args.eval_crops,
                         progress=not args.quiet)
        classes = list(d["classes"])
        if args.num_classes is not None and args.num_classes < len(classes):
            raise ValueError(f"--num-classes {args.num_classes} is smaller than the "
                             f"{len(classes)} classes of {args.data}: {_names(classes)}")
        if resume_path is not None and "classes" not in saved:
            _note_no_classes(resume_path)
        elif resume_path is not None:
            problem = class_difference(saved["classes"], classes, resume_path, args.data)
            if problem:
                raise ValueError(f"--resume: {problem}")
        config["classes"] = classes                 # saved in every checkpoint, for eval
        num_classes = args.num_classes if args.num_classes is not None else len(classes)
        net = build_model(args.model, num_classes, args.seed, args.init)
        lr_mults = _parse_lr_mults(args.lr_mult)
        if args.init_from or args.reinit or args.freeze or lr_mults:
            try:
                from ..pretrained import prepare_finetune
            except ImportError as err:
                raise ValueError("--init-from/--reinit/--freeze/--lr-mult need "
                                 f"numpy_alexnet.pretrained, which is not available ({err})") from err
            net, lr_mults = prepare_finetune(net, init_from=args.init_from,
                                             reinit=_parse_list(args.reinit),
                                             freeze=_parse_list(args.freeze), lr_mults=lr_mults,
                                             num_classes=args.num_classes)
        net, device = _place(net, args.backend, devices)
    except (BackendUnavailable, DataError, FileNotFoundError, ImportError, ValueError,
            KeyError) as err:                     # what a person can fix: a message, exit 1
        _err(cmd, str(err))
        return EXIT_ERROR
    write_config(out, cmd, config)
    mover = _mover(args.backend, device)
    print(f"  data {args.data}: {len(d['y_train'])} training images of {d['image_size']}x"
          f"{d['image_size']}, {len(d.get('y_val', []))} {d['val_split']} images, "
          f"{num_classes} classes, input scale {d['scale']:.6g} ({args.input_scale}), "
          f"augment {args.augment}, eval {d['eval_mode']} "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)

    train_batches = BatchIterator(d["x_train"], d["y_train"], args.batch_size, shuffle=True,
                                  seed=args.seed, transform=d["train_transform"],
                                  to_device=mover)
    val_batches = None
    if "x_val" in d and not args.no_val:
        eval_bs = max(1, args.batch_size // 10) if d["eval_mode"] == "ten" else args.batch_size

        def val_batches():
            return BatchIterator(d["x_val"], d["y_val"], eval_bs, shuffle=False,
                                 transform=d["val_transform"], to_device=mover)
    schedule = (PaperSchedule(patience=args.patience) if args.schedule == "paper"
                else FixedSchedule())
    opt = MomentumSGD(net, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                      lr_mults=lr_mults)
    trainer = Trainer(net, opt, train_batches, val_batches=val_batches, schedule=schedule,
                      out_dir=out, checkpoint_every=args.checkpoint_every,
                      max_steps=args.max_steps, max_seconds=args.time_limit,
                      progress=not args.quiet, config=config,
                      extra={"mean_image": d["mean_image"],
                             "input_scale": np.array(d["scale"], dtype=np.float64)},
                      eval_chunk=args.batch_size)
    if resume_path is not None:
        try:
            trainer.resume(resume_path)
        except (CheckpointError, ValueError, KeyError) as err:
            _err(cmd, f"--resume: {err}")
            return EXIT_ERROR
        print(f"  resumed from {resume_path}: epoch {trainer.epoch + 1}, batch {trainer.batch}, "
              f"step {trainer.step}, lr {opt.lr:g}", file=sys.stderr, flush=True)
    try:
        history = trainer.fit(args.epochs)
    except NonFiniteLossError as err:
        _err(cmd, str(err))
        return EXIT_NONFINITE
    except KeyboardInterrupt:
        _err(cmd, f"interrupted; resume with --resume (the last checkpoint is {trainer.latest_path})")
        return 130
    if history:
        last = history[-1]
        val = (f", {d['val_split']} top-1 {last['val_top1']:.4f} top-5 {last['val_top5']:.4f}"
               if last.get("val_top1") is not None and last.get("val_top5") is not None else "")
        print(f"done: {len(history)} epochs, {trainer.step} steps; last training error "
              f"{last['train_error']:.4f}{val}", file=sys.stderr)
    print(f"wrote {out}/metrics.csv, metrics.json, steps.csv, curves.png and "
          f"checkpoints/latest.npz, best.npz", file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------- #
# eval
# --------------------------------------------------------------------------- #
def _eval(args) -> int:
    from ..backend import BackendUnavailable
    from ..data import BatchIterator, DataError, EvalTransform, load_dataset
    from .checkpoint import CheckpointError, read_checkpoint
    from .trainer import evaluate

    cmd = "eval"
    choose_backend(args)
    print(f"numpy-alexnet eval: backend {args.backend} ({args.backend_reason})", file=sys.stderr,
          flush=True)
    problem = _devices_problem(args)
    if problem:
        _err(cmd, problem)
        return EXIT_USAGE
    try:
        ck = read_checkpoint(args.checkpoint)
    except CheckpointError as err:
        _err(cmd, str(err))
        return EXIT_ERROR
    cfg = ck["meta"]["config"]
    data = args.data or cfg.get("data")
    devices = tuple(int(x) for x in _parse_list(args.devices))
    try:
        num_classes = int(ck["params"][[k for k in ck["params"]][-1]].shape[0])
        net = build_model(cfg["model"], num_classes, 0, cfg.get("init"))
        net.load_state_dict(ck["params"])
        net, device = _place(net, args.backend, devices)
        resize = args.resize if args.resize is not None else cfg.get("resize")
        ds = load_dataset(data, resize=resize, limit_per_class=args.limit_per_class,
                          progress=not args.quiet)
        split = ds[args.split]
        if "classes" not in cfg:
            _note_no_classes(args.checkpoint)
            if len(ds.classes) > num_classes:
                raise ValueError(f"{data} has {len(ds.classes)} classes but the network of "
                                 f"{args.checkpoint} has {num_classes} outputs")
        else:
            problem = class_difference(cfg["classes"], ds.classes, args.checkpoint, data)
            if problem:
                raise ValueError(problem)
        mean = ck["extra"].get("mean_image")
        if mean is not None and tuple(mean.shape[-2:]) != split.image_size:
            (h, w), (H, W) = mean.shape[-2:], split.image_size
            raise ValueError(f"{data} {args.split} images are {H}x{W} but {args.checkpoint} was "
                             f"trained on {h}x{w} images (its mean image is {h}x{w}); "
                             f"rescale them as in training with --resize {h}")
    except (BackendUnavailable, DataError, FileNotFoundError, ImportError, ValueError,
            KeyError) as err:                     # what a person can fix: a message, exit 1
        _err(cmd, str(err))
        return EXIT_ERROR
    scale = float(ck["extra"]["input_scale"]) if "input_scale" in ck["extra"] else 1.0
    S, H = net.input_shape[-1], split.image_size[0]
    mode = "full" if S == H else ("ten" if args.crops == "ten" else "center")
    tf = EvalTransform(mean, None if S == H else S, mode, scale)
    idx = subset_indices(len(split), args.limit)
    bs = max(1, args.batch_size // 10) if mode == "ten" else args.batch_size
    batches = BatchIterator(split.images[idx], split.labels[idx], bs, shuffle=False, transform=tf,
                            to_device=_mover(args.backend, device))
    t0 = time.perf_counter()
    res = evaluate(net, batches, chunk=args.batch_size)
    res.update(checkpoint=str(args.checkpoint), split=args.split, images=int(len(idx)), crops=mode,
               seconds=round(time.perf_counter() - t0, 2))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{args.checkpoint} on {args.split} ({len(idx)} images, {mode} crop): "
              f"loss {res['loss']:.4f}, top-1 error {res['top1']:.4f}"
              + (f", top-5 error {res['top5']:.4f}" if "top5" in res else ""))
    return EXIT_OK


# --------------------------------------------------------------------------- #
# relu-vs-tanh
# --------------------------------------------------------------------------- #
def _relu_vs_tanh(args) -> int:
    from ..backend import BackendUnavailable
    from ..data import DataError
    from .study import run_study
    choose_backend(args)
    problem = _devices_problem(args)
    if problem:
        _err("relu-vs-tanh", problem)
        return EXIT_USAGE
    try:
        run_study(args)
    except BackendUnavailable as err:
        _err("relu-vs-tanh", str(err))
        return EXIT_ERROR
    except (DataError, FileNotFoundError, ValueError) as err:
        _err("relu-vs-tanh", str(err))
        return EXIT_ERROR
    return EXIT_OK


# --------------------------------------------------------------------------- #
# registration
# --------------------------------------------------------------------------- #
def device_list(text: str) -> str:
    """argparse type of --devices: GPU indexes, '0' or '0,1'; checked, kept as the text."""
    items = _parse_list(text)
    if not items or not all(i.isdigit() for i in items):
        raise argparse.ArgumentTypeError(f"expected GPU indexes such as 0 or 0,1, got {text!r}")
    return text


def lr_mult_list(text: str) -> str:
    """argparse type of --lr-mult: LAYER=MULTIPLIER items, 'fc8=10,conv1=0.1'; checked, kept."""
    for item in _parse_list(text):
        name, _, value = item.partition("=")
        try:
            ok = bool(name.strip()) and float(value) >= 0
        except ValueError:
            ok = False
        if not ok:
            raise argparse.ArgumentTypeError(f"expected LAYER=MULTIPLIER items with multipliers "
                                             f">= 0 such as fc8=10, got {item!r}")
    return text


def _add_backend_args(p):
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "numba", "cupy"),
                   help="array backend: auto (default) is numba where Numba imports, else numpy "
                        "(the readable reference); cupy, the GPU, only when named")
    p.add_argument("--devices", "--device", dest="devices", default=None, type=device_list,
                   help="GPU index for --backend cupy (e.g. 0); two, '0,1', to put the towers "
                        "on two devices where the network supports it")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on an image folder or CIFAR-10, with checkpoints",
        description="Train with momentum SGD (section 5): per-epoch training and validation "
                    "error, the paper's or a fixed learning-rate schedule, atomic checkpoints "
                    "(OUT/checkpoints/latest.npz and best.npz), metrics CSV/JSON and a plot.")
    p.add_argument("--model", default="alexnet",
                   help="alexnet (default), alexnet_torchvision, cifar_fig1 (= cifar_fig1_relu), "
                        "cifar_fig1_relu, cifar_fig1_tanh")
    p.add_argument("--data", required=True,
                   help="image-folder tree split/class/image (dir, .tar, .tar.gz) or a CIFAR-10 "
                        "python release, e.g. ../shared/data/cifar10-jpeg.tar.gz")
    p.add_argument("--resize", type=integer(1), default=None,
                   help="short side to this size, centre square crop (default 256 for alexnet)")
    p.add_argument("--limit-per-class", type=integer(1), default=None,
                   help="keep the first N images of each class and split (image folders)")
    p.add_argument("--subset", type=integer(1), default=None,
                   help="train on N training images (a fixed random choice)")
    p.add_argument("--val-subset", type=integer(1), default=None, help="validate on N images")
    p.add_argument("--no-val", action="store_true", help="skip validation")
    p.add_argument("--num-classes", type=integer(1), default=None,
                   help="size of the last layer (default: the dataset's class count)")
    _add_backend_args(p)
    p.add_argument("--epochs", type=integer(1), default=90,
                   help="epochs in all (default 90, the paper's)")
    p.add_argument("--batch-size", type=integer(1), default=128, help="default 128 (section 5)")
    p.add_argument("--lr", type=number(above=0), default=0.01,
                   help="initial learning rate (default 0.01)")
    p.add_argument("--momentum", type=number(at_least=0, below=1), default=0.9)
    p.add_argument("--weight-decay", type=number(at_least=0), default=0.0005)
    p.add_argument("--schedule", choices=("paper", "fixed"), default="paper",
                   help="paper: divide by 10 when validation error stops improving, 3 times at "
                        "most; fixed: keep the learning rate")
    p.add_argument("--patience", type=integer(1), default=1,
                   help="epochs without improvement before the paper schedule divides (default 1)")
    p.add_argument("--seed", type=integer(0), default=0, help="weights, data order, augmentation, dropout")
    p.add_argument("--input-scale", choices=("raw", "unit"), default="raw",
                   help="raw: 0-255 minus the mean image (the paper); unit: scaled to unit variance")
    p.add_argument("--init", choices=("cuda-convnet", "fan-in", "paper", "caffe", "kaiming"),
                   default=None,
                   help="cifar_fig1: cuda-convnet's initialization (default) or 1/sqrt(fan-in); "
                        "alexnet: the paper's (default), caffe (bvlc_alexnet's: biases 0.1, "
                        "N(0, 0.005) in fc6/fc7) or kaiming (N(0, std sqrt(2/fan-in)), biases 0, with "
                        "--input-scale unit); the last two are deviations")
    p.add_argument("--augment", choices=("none", "flip", "paper"), default=None,
                   help="paper: random crops, reflections, PCA colour (default for alexnet); "
                        "flip: crops and reflections; none (default for the cifar nets)")
    p.add_argument("--eval-crops", choices=("center", "ten"), default=None,
                   help="validation on the centre crop or the paper's 10 crops (default for alexnet)")
    p.add_argument("--out", default="runs/train",
                   help="output folder (default runs/train); one that already holds a run is "
                        "refused unless --resume is given")
    p.add_argument("--resume", nargs="?", const="latest", default=None,
                   help="go on from OUT/checkpoints/latest.npz, or from the checkpoint (or run "
                        "folder) given, bit for bit: the other settings, --lr, --momentum, "
                        "--weight-decay and --patience included, must be the run's; --epochs, "
                        "--max-steps and --time-limit may change")
    p.add_argument("--checkpoint-every", type=integer(0), default=0,
                   help="also write checkpoints/latest.npz every N steps (default 0: each epoch only)")
    p.add_argument("--max-steps", type=integer(1), default=None, help="stop after N steps in all")
    p.add_argument("--time-limit", type=number(above=0), default=None,
                   help="stop (with a checkpoint, resumable) after this many seconds")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar: one line per epoch, for logs")
    p.add_argument("--init-from", default=None, help="fine-tuning: start from these weights")
    p.add_argument("--reinit", default=None, help="fine-tuning: layers to draw afresh, e.g. fc8")
    p.add_argument("--freeze", default=None, help="fine-tuning: layers not to train, e.g. conv1,conv2")
    p.add_argument("--lr-mult", default=None, type=lr_mult_list, help="fine-tuning: per-layer rate multipliers, fc8=10")
    p.set_defaults(func=_train)

    e = subparsers.add_parser("eval", help="top-1/top-5 error of a checkpoint (centre or 10 crops)",
                              description="Evaluate a checkpoint written by 'train'.")
    e.add_argument("checkpoint", help="a .npz written by 'train' (e.g. OUT/checkpoints/best.npz)")
    e.add_argument("--data", default=None, help="dataset (default: the one it was trained on)")
    e.add_argument("--split", default="test", help="split to evaluate (default test)")
    e.add_argument("--crops", choices=("center", "ten"), default="center",
                   help="centre crop, or the paper's 10 crops with averaged softmax")
    e.add_argument("--resize", type=integer(1), default=None, help="default: as in training")
    e.add_argument("--limit-per-class", type=integer(1), default=None)
    e.add_argument("--limit", type=integer(1), default=None, help="evaluate N images (a fixed choice)")
    e.add_argument("--batch-size", type=integer(1), default=128)
    _add_backend_args(e)
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=_eval)

    from .study import add_arguments
    s = subparsers.add_parser(
        "relu-vs-tanh", help="the paper's Figure 1: epochs to 25%% training error, ReLU vs tanh",
        description="Train the Figure-1 four-layer CIFAR-10 net with ReLU and with tanh "
                    "(plain momentum SGD, batch 128, no regularization, no augmentation), "
                    "learning rates chosen per activation by a sweep, several seeds, under two "
                    "input regimes; report the epoch each run first reaches 25% training error "
                    "and the tanh/ReLU ratio.  --quick shows the effect in minutes on a CPU: "
                    "the cuda-convnet regime, all 50,000 images, the committed rates, one "
                    "seed, the running error over every 5,000 images, target 43%.")
    add_arguments(s)
    _add_backend_args(s)
    s.set_defaults(func=_relu_vs_tanh)
