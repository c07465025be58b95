"""``numpy-alexnet train | eval | relu-vs-tanh | ablate``: argparse and the handlers, nothing more.

    numpy-alexnet train --model cifar_fig1_relu --data ../shared/data/cifar10-jpeg.tar.gz \\
        --epochs 10 --lr 0.001 --weight-decay 0 --schedule fixed --out runs/fig1
    numpy-alexnet train --model alexnet --data FOLDER --resize 256 --out runs/alexnet
    numpy-alexnet train ... --resume                 # go on from runs/.../checkpoints/latest.npz
    numpy-alexnet train ... --resume --new-lr 0.001  # go on with a lower rate (after exit 3)
    numpy-alexnet eval runs/alexnet/checkpoints/best.npz --data FOLDER --crops ten
    numpy-alexnet relu-vs-tanh --quick --data ../shared/data/cifar10-jpeg.tar.gz
    numpy-alexnet ablate --quick --data ../shared/data/cifar10-jpeg.tar.gz

The run itself is put together in ``recipe.py`` (data, model by name, optimizer
and trainer) and guarded by ``runfiles.py`` (the lock on OUT, the write check,
leftovers, signals); the studies are ``numpy_alexnet.experiments``.
``add_commands(subparsers)`` adds the four commands; each
handler returns an exit code: 0 done, 1 a data/checkpoint/backend/disk problem,
2 bad arguments (or OUT in use), 3 the non-finite guard stopped the run,
128 + N stopped by signal N (SIGHUP 129, SIGINT 130, SIGTERM 143) with a checkpoint.
"""
from __future__ import annotations

import argparse
import functools
import sys

from ..argtypes import device_list, integer, lr_mult_list, model_name, number
from ..models import model_names
from .errors import EXIT_OK, EXIT_USAGE, RunError
from .recipe import choose_backend, devices_problem


def _err(cmd: str, msg: str) -> None:
    print(f"numpy-alexnet {cmd}: {msg}", file=sys.stderr, flush=True)


def _run(cmd: str, work, args) -> int:
    """``work(args)``'s exit code, or a RunError's message and code.

    ``--backend auto`` is resolved first, so everything after sees the backend run on.
    """
    choose_backend(args)
    problem = devices_problem(args.backend, args.devices)
    if problem:
        _err(cmd, problem)
        return EXIT_USAGE
    try:
        return work(args)
    except RunError as err:
        _err(cmd, str(err))
        return err.code


# --------------------------------------------------------------------------- #
# The four commands (what they do: commands.py and numpy_alexnet.experiments)
# --------------------------------------------------------------------------- #
def _train(args) -> int:
    from .commands import run_train
    return _run("train", run_train, args)


def _eval(args) -> int:
    from .commands import evaluate_checkpoint
    return _run("eval", evaluate_checkpoint, args)


def _relu_vs_tanh(args) -> int:
    from ..experiments import run_relu_vs_tanh
    return _run("relu-vs-tanh", functools.partial(_experiment, run_relu_vs_tanh), args)


def _ablate(args) -> int:
    from ..experiments import run_ablation
    return _run("ablate", functools.partial(_experiment, run_ablation), args)


def _experiment(run, args) -> int:
    from .commands import fixable
    with fixable():
        run(args)
    return EXIT_OK


# --------------------------------------------------------------------------- #
# registration
# --------------------------------------------------------------------------- #
def _add_backend_args(p):
    p.add_argument("--backend", default="auto", choices=("auto", "numpy", "numba", "cupy"),
                   help="array backend: auto (default) is numba where Numba imports, else numpy "
                        "(the readable reference); cupy, the GPU, only when named")
    p.add_argument("--devices", "--device", dest="devices", default=None, type=device_list,
                   help="GPU index for --backend cupy (e.g. 0); two, '0,1', to put the towers "
                        "on two devices where the network supports it")


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model on an image folder or CIFAR-10, with checkpoints",
        description="Train with momentum SGD (section 5): per-epoch training and validation "
                    "error, the paper's or a fixed learning-rate schedule, atomic checkpoints "
                    "(OUT/checkpoints/latest.npz and best.npz), metrics CSV/JSON and a plot. "
                    "One run at a time in OUT (OUT/.lock); SIGTERM, SIGHUP and SIGINT stop "
                    "after the current step with a checkpoint and exit 128 + the signal.")
    p.add_argument("--model", default="alexnet", type=model_name,
                   help=f"one of {model_names()} (default alexnet)")
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
    _add_train_optimizer_args(p)
    _add_train_run_args(p)
    p.set_defaults(func=_train)
    _add_eval_parser(subparsers)
    _add_study_parser(subparsers)


def _add_train_optimizer_args(p) -> None:
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


def _add_train_run_args(p) -> None:
    p.add_argument("--out", default="runs/train",
                   help="output folder (default runs/train); one that already holds a run is "
                        "refused unless --resume is given")
    p.add_argument("--resume", nargs="?", const="latest", default=None,
                   help="go on from OUT/checkpoints/latest.npz, or from the checkpoint (or run "
                        "folder) given, bit for bit: every setting of the training path, "
                        "--lr, --momentum, --weight-decay, --patience, --eval-crops, --freeze "
                        "and --lr-mult included, must be the run's; --epochs, --max-steps, "
                        "--time-limit, --checkpoint-every, --stream/--no-stream, --workers and "
                        "--quiet may change")
    p.add_argument("--checkpoint-every", type=integer(0), default=0,
                   help="also write checkpoints/latest.npz every N steps (default 0: each epoch only)")
    p.add_argument("--max-steps", type=integer(1), default=None, help="stop after N steps in all")
    p.add_argument("--time-limit", type=number(above=0), default=None,
                   help="stop (with a checkpoint, resumable) after this many seconds")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar: one line per epoch, for logs")
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="read an image-folder directory from disk a batch at a time, decoded and "
                        "augmented in --workers processes while the step runs (memory bounded "
                        "whatever the data's size, e.g. ImageNet); the same batches as in RAM. "
                        "Neither flag: a folder whose decoded images would take more than an "
                        "eighth of the memory available streams (the run's first lines say "
                        "so), a smaller one is decoded into RAM; --no-stream: into RAM anyway")
    p.add_argument("--workers", type=integer(1), default=2,
                   help="data worker processes with --stream (default 2)")
    p.add_argument("--init-from", default=None, help="fine-tuning: start from these weights")
    p.add_argument("--reinit", default=None, help="fine-tuning: layers to draw afresh, e.g. fc8")
    p.add_argument("--freeze", default=None, help="fine-tuning: layers not to train, e.g. conv1,conv2")
    p.add_argument("--lr-mult", default=None, type=lr_mult_list, help="fine-tuning: per-layer rate multipliers, fc8=10")
    p.add_argument("--new-lr", type=number(above=0), default=None,
                   help="with --resume: go on with this learning rate instead of the "
                        "checkpoint's (e.g. a tenth of it after the non-finite guard stopped "
                        "the run, exit 3); recorded as lr_changes in metrics.json")


def _add_eval_parser(subparsers) -> None:
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


def _add_study_parser(subparsers) -> None:
    from ..experiments import relu_vs_tanh_arguments as add_arguments
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
    _add_ablate_parser(subparsers)


def _add_ablate_parser(subparsers) -> None:
    from ..experiments import ablation_arguments as add_arguments
    s = subparsers.add_parser(
        "ablate", help="the paper's CIFAR-10 ablations: LRN, overlapping pooling, dropout, "
                       "augmentation, 10-view test",
        description="Train cuda-convnet's conv-local CIFAR-10 net (and a net with a hidden fc "
                    "layer for dropout) with and without each feature, several seeds, and "
                    "report the test errors and the paired gains with 95% intervals beside "
                    "the paper's claims and the 2012 code's logs.")
    add_arguments(s)
    _add_backend_args(s)
    s.set_defaults(func=_ablate)
