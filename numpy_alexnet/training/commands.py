"""What ``numpy-alexnet train`` and ``eval`` do, step by step, on the parsed arguments.

``train``: refuse what cannot work before any work (a file as --out, another run
holding OUT's lock, a folder that cannot be written, a run already there, a
checkpoint that does not fit), then prepare the data, build the model and
assemble the trainer (``recipe.py``), train with SIGTERM, SIGHUP and SIGINT
turned into a stop with a checkpoint, and say how it ended.  ``eval``: check the
data's classes against the checkpoint's from the folder names, then decode only
the split evaluated.

Each function raises :class:`~numpy_alexnet.training.errors.RunError` for what a
person can fix; ``cli.py`` prints it and exits with its code.
"""
from __future__ import annotations

import errno
import json
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..argtypes import device_indexes
from ..finetune import parse_lr_mults, parse_names, prepare_finetune
from .errors import EXIT_ERROR, EXIT_NONFINITE, EXIT_OK, EXIT_USAGE, RunError
from .recipe import (assemble, build_model, check_classes, choose_stream, data_identity,
                     dataset_classes, eval_batch_size, load_split, model_input_size, mover,
                     name_list, place, prepare_data, print_start, run_config, subset_indices,
                     write_config)

RUN_FILES = ("checkpoints/latest.npz", "checkpoints/best.npz", "metrics.json", "metrics.csv",
             "steps.csv")

# Keys of the configuration that a resumed run must share with its checkpoint: every setting
# that changes the training path.  The run goes on bit for bit with the checkpoint's weights,
# velocities, learning rate, schedule and backend, so a new --lr, --momentum, --freeze,
# --lr-mult, --eval-crops (the validation error drives the paper schedule) ... would be
# ignored or change the run: refused instead (a lower rate after a non-finite stop:
# --new-lr).  What may change: --epochs, --max-steps, --time-limit, --checkpoint-every,
# --stream/--no-stream and --workers (the same batches), --quiet, --devices.  The data are
# compared apart, by content (data_identity: size and SHA-256), after their classes.
RESUME_MUST_MATCH = ("model", "resize", "limit_per_class", "subset", "val_subset", "no_val",
                     "batch_size", "seed", "input_scale", "init", "augment", "eval_crops",
                     "schedule", "num_classes", "lr", "momentum", "weight_decay", "patience",
                     "backend", "init_from", "reinit", "freeze", "lr_mult")


@contextmanager
def fixable():
    """What a person can fix, raised by the libraries underneath, as a RunError (exit 1)."""
    from ..backend import BackendUnavailable
    from ..data import DataError
    from .checkpoint import CheckpointError
    try:
        yield
    except (BackendUnavailable, CheckpointError, DataError, FileNotFoundError, ImportError,
            ValueError, KeyError) as err:
        # A KeyError's str() is its argument's repr: its message is the argument.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise RunError(str(message)) from err


def _say(msg: str) -> None:
    print(f"numpy-alexnet train: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# train
# --------------------------------------------------------------------------- #
def _train_config(args) -> dict:
    keys = ("model", "data", "resize", "limit_per_class", "subset", "val_subset", "no_val",
            "num_classes", "backend", "devices", "epochs", "batch_size", "lr", "momentum",
            "weight_decay", "schedule", "patience", "seed", "input_scale", "init", "augment",
            "eval_crops", "checkpoint_every", "max_steps", "time_limit", "init_from", "reinit",
            "freeze", "lr_mult", "stream", "workers")
    return {k: getattr(args, k, None) for k in keys}


def _model_defaults(args) -> None:
    """Defaults that depend on the model: the paper's recipe for AlexNet."""
    args.devices = list(device_indexes(args.devices))
    is_alexnet = args.model.startswith("alexnet")
    if args.augment is None:
        args.augment = "paper" if is_alexnet else "none"
    if args.eval_crops is None:
        args.eval_crops = "ten" if is_alexnet else "center"
    if args.resize is None and is_alexnet and args.data:
        args.resize = 256


def run_train(args) -> int:
    """``numpy-alexnet train``: the exit code (errors a person can fix: RunError)."""
    from .runfiles import SignalStop, stop_on_signals
    try:
        with stop_on_signals() as guard:
            return _train_in(args, guard)
    except SignalStop as stop:
        if guard.trainer is None:
            raise RunError(f"{stop}: stopped before training began; nothing was written",
                           128 + stop.signum) from None
        raise RunError(f"{stop} a second time: stopped at once, {guard.trainer.step} steps done; "
                       f"{_how_to_go_on(args)}", 128 + stop.signum) from None


def _train_in(args, guard) -> int:
    """``train`` with signals caught by ``guard``."""
    from .runfiles import RunLock, remove_run_temps
    out = Path(args.out)
    _check_arguments(args)
    ten_asked = args.eval_crops == "ten"
    _model_defaults(args)
    config = _train_config(args)
    config["backend_reason"] = getattr(args, "backend_reason", None)
    if out.exists() and not out.is_dir():
        raise RunError(f"--out {out} is a file; expected a folder to write the run into",
                       EXIT_USAGE)
    if args.num_classes is not None:
        with fixable():
            found = dataset_classes(args.data)      # folder names only; None for CIFAR-10
        if found is not None:
            _check_num_classes(args, found)
    with RunLock(out):                              # checks OUT is writable, refuses a 2nd run
        for p in remove_run_temps(out):
            print(f"  removed {p}, left by an interrupted write", file=sys.stderr)
        earlier = [f for f in RUN_FILES if (out / f).exists()]
        if earlier and not args.resume:
            raise RunError(f"--out {out} already holds a run ({', '.join(earlier)}); pass "
                           "--resume to continue it, or choose another --out", EXIT_USAGE)
        with fixable():
            config["data_identity"] = data_identity(args.data)
        resume_path, saved = resume_source(args, out, config)
        if resume_path is not None and saved is None:
            return EXIT_OK                          # nothing left to do
        with fixable():
            args.stream, why = choose_stream(args.data, args.resize, args.limit_per_class,
                                             args.stream)
        config["stream"] = args.stream
        print_start("train", config, [
            f"model {args.model}, data {args.data}"
            + (f", subset {args.subset}" if args.subset else "")
            + (", streamed from disk" if args.stream else "")] + ([why] if why else []) + [
            f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr:g} ({args.schedule} "
            f"schedule), momentum {args.momentum:g}, weight decay {args.weight_decay:g}, "
            f"seed {args.seed}", f"writes to {out}"])
        guard.watch(_setup(args, config, resume_path, saved, ten_asked))
        return _fit(args, guard.trainer, guard, config)


def _check_arguments(args) -> None:
    """What is wrong with the arguments alone, before anything is read or written."""
    if args.new_lr is not None and not args.resume:
        raise RunError(f"--new-lr {args.new_lr:g} changes the rate of a resumed run; add "
                       "--resume (a new run takes --lr)", EXIT_USAGE)
    if args.init == "kaiming" and args.input_scale != "unit":
        # N(0, std sqrt(2/fan-in)) keeps the inputs' scale through the layers: raw 0-255
        # pixels (standard deviation ~60) would give logits in the tens.
        raise RunError("--init kaiming is made for unit-variance inputs; add --input-scale unit",
                       EXIT_USAGE)


def _check_num_classes(args, classes) -> None:
    if args.num_classes is not None and args.num_classes < len(classes):
        raise RunError(f"--num-classes {args.num_classes} is smaller than the {len(classes)} "
                       f"classes of {args.data}: {name_list(classes)}", EXIT_USAGE)


def resume_source(args, out: Path, config: dict):
    """(checkpoint to resume, its configuration), (None, None) for a new run; refuses a misfit.

    (path, None): the checkpoint has done what --epochs/--max-steps ask; nothing to do.
    """
    from .checkpoint import CheckpointError, read_checkpoint, restore_due_best
    if not args.resume:
        return None, None
    # OUT's latest checkpoint, a checkpoint file, or the latest checkpoint of a run folder.
    path = Path(args.resume)
    if args.resume == "latest" or path.is_dir():
        run_dir = out if args.resume == "latest" else path
        path = run_dir / "checkpoints" / "latest.npz"
        if not path.is_file():
            raise RunError(f"--resume: {run_dir} holds no run (no checkpoints/latest.npz); "
                           "expected a run folder or a checkpoint file")
    try:
        meta = read_checkpoint(path)["meta"]
    except CheckpointError as err:
        raise RunError(f"--resume: {err}") from err
    saved = run_config(meta, path)
    if "data_identity" not in saved:                # written before identities: the path
        saved = dict(saved, data_identity=config["data_identity"]
                     if Path(saved.get("data", "")).resolve() == Path(args.data).resolve()
                     else saved.get("data"))
    # A key the checkpoint does not record (written by an older version) is not compared.
    diff = [k for k in RESUME_MUST_MATCH
            if k in saved and _setting(k, saved[k]) != _setting(k, config.get(k))]
    if diff:
        raise RunError("--resume: the checkpoint was made with different settings: " + "; ".join(
            f"{k}: checkpoint {saved.get(k)!r}, now {config.get(k)!r}" for k in diff)
            + " (a resumed run goes on bit for bit with its own settings: give the same ones; "
            "a lower rate: --new-lr)", EXIT_USAGE)
    if meta["epoch"] >= args.epochs or (args.max_steps is not None
                                        and meta["step"] >= args.max_steps):
        limits = f"--epochs {args.epochs}" + (f", --max-steps {args.max_steps}"
                                              if args.max_steps is not None else "")
        best = out / "checkpoints" / "best.npz"
        try:
            wrote = restore_due_best(path, best) if path.parent == best.parent else False
        except OSError as err:
            raise RunError(f"writing {best} failed: {_write_failure(err, args)}") from err
        print(f"numpy-alexnet train: {path} has trained {meta['epoch']} epochs "
              f"({meta['step']} steps) and {limits} asks for no more: nothing to do"
              + (f"; wrote {best}, which an earlier write left out" if wrote
                 else ", nothing written"), file=sys.stderr)
        return path, None
    return path, saved


def _setting(key: str, value):
    """A setting as --resume compares it: layer lists in any order, multipliers as numbers."""
    if key in ("freeze", "reinit"):
        return sorted(parse_names(value))
    if key == "lr_mult":
        return parse_lr_mults(value)
    return value


def _setup(args, config: dict, resume_path, saved, ten_asked: bool):
    """Data, model and trainer of ``train`` (resumed from ``resume_path`` if given).

    ten_asked: --eval-crops ten was given (not a default): refused where no crop fits.
    """
    with fixable():
        t0 = time.perf_counter()
        d = prepare_data(args.data, model_input_size(args.model), resize=args.resize,
                         limit_per_class=args.limit_per_class, subset=args.subset,
                         val_subset=args.val_subset, input_scale=args.input_scale,
                         augment=args.augment, eval_crops=args.eval_crops,
                         progress=not args.quiet, stream=args.stream, workers=args.workers)
        classes = list(d["classes"])
        _check_num_classes(args, classes)
        if ten_asked and d["eval_mode"] == "full":
            raise RunError(_no_room_for_crops(
                "--eval-crops ten", args.data, d["image_size"], args.model,
                "leave it out (validation then sees the whole image)"), EXIT_USAGE)
        if resume_path is not None:
            try:
                check_classes(saved, classes, len(classes), resume_path, args.data)
            except RunError as err:
                raise RunError(f"--resume: {err}") from err
            _check_same_data(args.data, config, saved, resume_path)
        config["classes"] = classes                 # saved in every checkpoint, for eval
        num_classes = args.num_classes if args.num_classes is not None else len(classes)
        net, lr_mults = _network(args, num_classes)
        net, device = place(net, args.backend, tuple(args.devices))
        _print_data(args, d, num_classes, time.perf_counter() - t0)
        trainer = assemble(
            net, d, batch_size=args.batch_size, seed=args.seed, lr=args.lr,
            momentum=args.momentum, weight_decay=args.weight_decay, backend=args.backend,
            device=device, lr_mults=lr_mults, schedule=_schedule(args), validate=not args.no_val,
            out_dir=Path(args.out), checkpoint_every=args.checkpoint_every,
            max_steps=args.max_steps, max_seconds=args.time_limit, progress=not args.quiet,
            config=config, eval_chunk=args.batch_size,
            extra={"mean_image": d["mean_image"],
                   "input_scale": np.array(d["scale"], dtype=np.float64)})
        if resume_path is not None:
            _resume(args, trainer, resume_path)
    return trainer


def _check_same_data(data, config: dict, saved: dict, path) -> None:
    """Refuse other data than the checkpoint's, compared by content (size and SHA-256)."""
    now, then = config["data_identity"], saved["data_identity"]
    if isinstance(then, dict) and "tree_sha256" in then and "hashed" not in then:
        # An older version hashed a folder with its files' modification times: only its
        # total size can be compared.
        print(f"  note: {path} identifies its folder by modification times (an older "
              "version); comparing the folder's total size only", file=sys.stderr)
        now, then = now.get("size"), then.get("size")
    if now != then:
        raise RunError(f"--resume: {data} is not the data {path} was trained on (by content: "
                       f"checkpoint {then}, now {now}); a resumed run goes on bit for bit only "
                       "on the same images (the same file under another path is accepted)")


def _schedule(args):
    from .trainer import FixedSchedule, PaperSchedule
    return PaperSchedule(patience=args.patience) if args.schedule == "paper" else FixedSchedule()


def _network(args, num_classes: int):
    """The named model, with fine-tuning applied: (net, lr_mults)."""
    net = build_model(args.model, num_classes, args.seed, args.init)
    lr_mults = parse_lr_mults(args.lr_mult)
    if args.init_from or args.reinit or args.freeze or lr_mults:
        net, lr_mults = prepare_finetune(net, init_from=args.init_from, reinit=args.reinit,
                                         freeze=args.freeze, lr_mults=lr_mults,
                                         num_classes=args.num_classes)
    return net, lr_mults


def _print_data(args, d: dict, num_classes: int, seconds: float) -> None:
    """The data line, and a note for each count asked for that the data cannot give."""
    n_train, n_val = len(d["train"]), (len(d["val"]) if d.get("val") is not None else 0)
    val = f"{n_val} {d['val_split']} images" if d["val_split"] else "no validation split"
    print(f"  data {args.data}: {n_train} training images of {d['image_size']}x"
          f"{d['image_size']}, {val}, "
          f"{num_classes} classes, input scale {d['scale']:.6g} ({args.input_scale}), "
          f"augment {args.augment}, eval {d['eval_mode']} ({seconds:.1f} s)",
          file=sys.stderr, flush=True)
    if args.subset is not None and args.subset > d["train_size"]:
        print(f"  note: --subset {args.subset} is more than the {d['train_size']} training "
              f"images: training on all {d['train_size']}", file=sys.stderr)
    if args.val_subset is not None and d["val_size"] is not None and args.val_subset > d["val_size"]:
        print(f"  note: --val-subset {args.val_subset} is more than the {d['val_size']} "
              f"{d['val_split']} images: validating on all {d['val_size']}", file=sys.stderr)
    if args.batch_size > n_train:
        print(f"  note: --batch-size {args.batch_size} is more than the {n_train} training "
              f"images: each epoch is one batch of {n_train}", file=sys.stderr)


def _resume(args, trainer, path) -> None:
    from .checkpoint import CheckpointError
    try:
        trainer.resume(path)                        # and the best.npz a failed write owes
    except (CheckpointError, ValueError, KeyError) as err:
        raise RunError(f"--resume: {err}") from err
    except OSError as err:
        raise RunError(f"--resume: writing {trainer.best_path} failed: "
                       f"{_write_failure(err, args)}") from err
    print(f"  resumed from {path}: epoch {trainer.epoch + 1}, batch {trainer.batch}, "
          f"step {trainer.step}, lr {trainer.optimizer.lr:g}", file=sys.stderr, flush=True)
    if args.new_lr is not None:
        was = trainer.optimizer.lr
        trainer.set_lr(args.new_lr, "--new-lr")
        print(f"  learning rate {was:g} -> {args.new_lr:g} (--new-lr; recorded as lr_changes "
              "in metrics.json)", file=sys.stderr, flush=True)


def _command(args) -> str:
    """The command as it was given."""
    return "numpy-alexnet " + shlex.join(list(getattr(args, "argv", None) or sys.argv[1:]))


def _resume_command(args, new_lr: float | None = None) -> str:
    """The command as given, with --resume (and --new-lr ``new_lr`` in place of any given)."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    if "--resume" not in argv and not any(a.startswith("--resume=") for a in argv):
        argv.append("--resume")
    if new_lr is not None:
        while "--new-lr" in argv:
            i = argv.index("--new-lr")
            del argv[i:i + 2]
        argv = [a for a in argv if not a.startswith("--new-lr=")] + ["--new-lr", f"{new_lr:g}"]
    return "numpy-alexnet " + shlex.join(argv)


def _how_to_go_on(args) -> str:
    """Resume where OUT holds a checkpoint; else start again (nothing to resume)."""
    if (Path(args.out) / "checkpoints" / "latest.npz").exists():
        return ("the checkpoints written before are intact (writes are atomic); resume with "
                + _resume_command(args))
    return ("no checkpoint was written, so there is nothing to resume: start again with "
            + _command(args))


# What to do about a write that failed, by its cause.
_DISK_ADVICE = {errno.ENOSPC: "free space", errno.EDQUOT: "free space or raise the quota",
                errno.EROFS: "the file system is read-only: make it writable or choose "
                             "another --out",
                errno.EACCES: "make --out writable for this user",
                errno.EPERM: "make --out writable for this user"}


def _write_failure(err: OSError, args) -> str:
    """What failed, its remedy and the command that goes on, for a write that failed."""
    where = f" ({err.filename})" if err.filename else ""
    advice = _DISK_ADVICE.get(err.errno)
    return (f"{err.strerror or err}{where}; " + (f"{advice}; then: " if advice else "")
            + _how_to_go_on(args))


def _no_room_for_crops(flag: str, data, size: int, model: str, instead: str) -> str:
    return (f"{flag}: the {size}x{size} images of {data} are the size {model} takes, so "
            "there is no room for the paper's 10 crops (the corners and centre of larger "
            f"images, and their reflections: e.g. --resize 256 for AlexNet); {instead}")


def _fit(args, trainer, guard, config: dict) -> int:
    """Write OUT/config.json (the data and class checks have passed), train; the outcome
    as a message and an exit code."""
    from .trainer import NonFiniteLossError
    try:
        write_config(args.out, "train", config)
        history = trainer.fit(args.epochs)
    except NonFiniteLossError as err:
        have = trainer.latest_path.exists()
        _say(f"{err} " + (
            "To go on from the last checkpoint with a lower rate: "
            f"{_resume_command(args, new_lr=trainer.optimizer.lr / 10)}" if have else
            f"Start again with a lower --lr (e.g. {args.lr / 10:g})."))
        return EXIT_NONFINITE
    except OSError as err:                          # a full disk, a folder gone read-only
        _say(f"writing the run failed at step {trainer.step}: {_write_failure(err, args)}")
        return EXIT_ERROR
    if guard.signum is not None and trainer.stopped:
        _say(f"{guard.name}: stopped after step {trainer.step} with a checkpoint "
             f"({trainer.latest_path}); resume with {_resume_command(args)}")
        return 128 + guard.signum
    _print_done(trainer, history)
    return EXIT_OK


def _print_done(trainer, history) -> None:
    if history:
        last = history[-1]
        val = (f", top-1 {last['val_top1']:.4f} top-5 {last['val_top5']:.4f}"
               if last.get("val_top1") is not None and last.get("val_top5") is not None else "")
        print(f"done: {len(history)} epochs, {trainer.step} steps; last training error "
              f"{last['train_error']:.4f}{val}", file=sys.stderr)
    out = trainer.out_dir
    wrote = [f for f in ("metrics.csv", "metrics.json", "steps.csv", "curves.png",
                         "checkpoints/latest.npz", "checkpoints/best.npz") if (out / f).exists()]
    print(f"wrote {out}/: {', '.join(wrote)}", file=sys.stderr)


# --------------------------------------------------------------------------- #
# eval
# --------------------------------------------------------------------------- #
def evaluate_checkpoint(args) -> int:
    """``numpy-alexnet eval``: the exit code (errors a person can fix: RunError)."""
    from ..data import BatchIterator, EvalTransform
    from .trainer import evaluate
    print(f"numpy-alexnet eval: backend {args.backend} ({args.backend_reason})",
          file=sys.stderr, flush=True)
    net, split, ck, mode, device = _eval_setup(args)
    scale = float(ck["extra"]["input_scale"]) if "input_scale" in ck["extra"] else 1.0
    mean = ck["extra"].get("mean_image")
    S, H = net.input_shape[-1], split.image_size[0]
    tf = EvalTransform(mean, None if S == H else S, mode, scale)
    idx = subset_indices(len(split), args.limit)
    bs = eval_batch_size(args.batch_size, mode)
    batches = BatchIterator(split.images[idx], split.labels[idx], bs, shuffle=False, transform=tf,
                            to_device=mover(args.backend, device))
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


def _eval_setup(args):
    """(net, split, checkpoint, crop mode, device): the classes checked before any decoding."""
    from .checkpoint import read_checkpoint
    with fixable():
        ck = read_checkpoint(args.checkpoint)
        cfg = run_config(ck["meta"], args.checkpoint)
        data = args.data or cfg.get("data")
        num_classes = int(ck["params"][[k for k in ck["params"]][-1]].shape[0])
        found = dataset_classes(data)               # folder names only: nothing decoded yet
        if found is not None:
            check_classes(cfg, found, num_classes, args.checkpoint, data)
        net = build_model(cfg["model"], num_classes, 0, cfg.get("init"))
        net.load_state_dict(ck["params"])
        net, device = place(net, args.backend, device_indexes(args.devices))
        resize = args.resize if args.resize is not None else cfg.get("resize")
        split = load_split(data, args.split, resize=resize, limit_per_class=args.limit_per_class,
                           progress=not args.quiet)
        if found is None:
            check_classes(cfg, split.classes, num_classes, args.checkpoint, data)
        mean = ck["extra"].get("mean_image")
        if mean is not None and tuple(mean.shape[-2:]) != split.image_size:
            (h, w), (H, W) = mean.shape[-2:], split.image_size
            raise ValueError(f"{data} {args.split} images are {H}x{W} but {args.checkpoint} was "
                             f"trained on {h}x{w} images (its mean image is {h}x{w}); "
                             f"rescale them as in training with --resize {h}")
    S, H = net.input_shape[-1], split.image_size[0]
    if S == H and args.crops == "ten":
        raise RunError(_no_room_for_crops("--crops ten", f"{data} ({args.split})", H,
                                          cfg["model"], "give --crops center (the whole image)"),
                       EXIT_USAGE)
    mode = "full" if S == H else ("ten" if args.crops == "ten" else "center")
    return net, split, ck, mode, device
