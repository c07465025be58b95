"""Transfer on CIFAR-10: does a net pretrained on five classes help on the other five?

    python benchmarks/finetune_demo.py [--data ../shared/data/cifar10-jpeg.tar.gz]
                                       [--out runs/finetune_demo]
                                       [--json docs/results/finetune_demo.json]

1. Pretrain the Figure-1 net (``cifar_fig1``, ReLU, 5 outputs) on classes 0-4
   (airplane, automobile, bird, cat, deer): ``--pretrain-per-class`` training
   images of each, ``--pretrain-epochs`` epochs.  Its weights are written in
   this project's layout (``pretrained_a.npz``) and in the bvlc layout
   (``pretrained_a_bvlc.npy``), and the bvlc file is read back into a fresh
   network to check both give the same logits.
2. On classes 5-9 (dog, frog, horse, ship, truck), from ``--subset-per-class``
   training images of each, train for ``--finetune-epochs`` epochs:
   * ``finetune``: start from the bvlc file with the classifier (fc10)
     replaced, ``prepare_finetune(net, init_from=..., num_classes=5)``;
   * ``finetune_frozen``: the same with conv1 and conv2 frozen (lr_mult 0);
   * ``scratch``: the same network from its own random initialization.
3. Report top-1 accuracy on all 5,000 test images of classes 5-9.

All arms share one recipe: batch 128, momentum 0.9, weight decay 0.0005,
``--lr`` fixed, pixels minus the mean image of the whole training set divided
by the pixels' standard deviation (unit variance), weights N(0, std 1/sqrt(fan-in))
(cuda-convnet's raw-pixel initialization learns too slowly for a short
demonstration), random horizontal reflections, the same data order.  The new
classifier is N(0, 0.01) (``replace_classifier``).  On a shared machine run it
with ``OPENBLAS_NUM_THREADS=1``: BLAS threads competing with other jobs for
the same cores slow every step.  A plain loop with :class:`MomentumSGD` (the trainer
CLI does the same with ``--init-from``/``--reinit``/``--freeze``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from numpy_alexnet.data import BatchIterator, EvalTransform, TrainTransform, load_dataset  # noqa: E402
from numpy_alexnet.finetune import prepare_finetune  # noqa: E402
from numpy_alexnet.layers import SoftmaxCrossEntropy  # noqa: E402
from numpy_alexnet.models import cifar_fig1  # noqa: E402
from numpy_alexnet.optim import MomentumSGD  # noqa: E402
from numpy_alexnet.pretrained import load_bvlc, save_bvlc, save_state  # noqa: E402

CLASSES_A, CLASSES_B = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


def pick(split, classes, per_class, seed):
    """uint8 images and labels 0..len(classes)-1 of ``classes``: ``per_class`` of each (None: all)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in classes:
        idx = np.flatnonzero(split.labels == c)
        if per_class is not None:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        rows.append(idx)
    rows = np.concatenate(rows)
    relabel = {c: i for i, c in enumerate(classes)}
    return split.images[rows], np.array([relabel[int(c)] for c in split.labels[rows]])


FAN_IN_STDS = tuple(float(1 / np.sqrt(f)) for f in (5 * 5 * 3, 5 * 5 * 32, 5 * 5 * 32, 3 * 3 * 64))


def make_net(seed):
    """The Figure-1 net (ReLU) with 5 outputs and fan-in initialization."""
    return cifar_fig1("relu", num_classes=5, seed=seed, weight_stds=FAN_IN_STDS)


def train(net, x, y, epochs, lr, mean, scale, seed, lr_mults=None, log=None, tag=""):
    """Momentum SGD on (x, y) for ``epochs``; returns the per-epoch mean training loss."""
    opt = MomentumSGD(net, lr=lr, momentum=0.9, weight_decay=0.0005, lr_mults=lr_mults)
    loss_fn = SoftmaxCrossEntropy()
    batches = BatchIterator(x, y, 128, shuffle=True, seed=seed,
                            transform=TrainTransform(mean, crop_size=None, flip=True, scale=scale))
    losses = []
    for epoch in range(epochs):
        total, n, t0 = 0.0, 0, time.perf_counter()
        for xb, yb in batches.epoch_iter(epoch):
            loss = loss_fn.forward(net.forward(xb, train=True), yb)
            net.backward(loss_fn.backward())
            opt.step()
            total, n = total + float(loss) * len(yb), n + len(yb)
        losses.append(total / n)
        if log:
            log(f"{tag} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} "
                f"({time.perf_counter() - t0:.1f} s)")
    return losses


def logits(net, x, mean, scale, batch=500):
    tf = EvalTransform(mean, scale=scale)
    return np.concatenate([net.forward(tf(x[i:i + batch]), train=False)
                           for i in range(0, len(x), batch)])


def accuracy(net, x, y, mean, scale) -> float:
    return float((logits(net, x, mean, scale).argmax(axis=1) == y).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/cifar10-jpeg.tar.gz"))
    p.add_argument("--out", default="runs/finetune_demo")
    p.add_argument("--json", default=None, help="write the results here too")
    p.add_argument("--pretrain-per-class", type=int, default=1000)
    p.add_argument("--pretrain-epochs", type=int, default=5)
    p.add_argument("--subset-per-class", type=int, default=100)
    p.add_argument("--finetune-epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t_start:7.1f} s] {msg}", file=sys.stderr, flush=True)

    ds = load_dataset(args.data)
    mean = ds.stats().mean_image.astype(np.float32)                     # (3, 32, 32)
    scale = float(1.0 / np.std(ds.train.images[:5000].astype(np.float32) - mean))   # unit variance
    xa, ya = pick(ds.train, CLASSES_A, args.pretrain_per_class, args.seed)
    xa_test, ya_test = pick(ds.test, CLASSES_A, None, args.seed)
    xb, yb = pick(ds.train, CLASSES_B, args.subset_per_class, args.seed + 1)
    xb_test, yb_test = pick(ds.test, CLASSES_B, None, args.seed)
    log(f"pretraining set {len(ya)} images of classes {CLASSES_A}; fine-tuning subset "
        f"{len(yb)} images of classes {CLASSES_B}; test {len(yb_test)} images")

    # 1. Pretrain on A, write the weights in two layouts, check the bvlc file reads back.
    net_a = make_net(args.seed)
    pre_losses = train(net_a, xa, ya, args.pretrain_epochs, args.lr, mean, scale, args.seed,
                       log=log, tag="pretrain A")
    acc_a = accuracy(net_a, xa_test, ya_test, mean, scale)
    log(f"pretrained net: top-1 {acc_a:.4f} on the {len(ya_test)} test images of A")
    save_state(net_a, out / "pretrained_a.npz")
    bvlc_path = save_bvlc(net_a, out / "pretrained_a_bvlc.npy")
    back = load_bvlc(bvlc_path, make_net(99))
    same = float(np.abs(logits(back, xa_test[:500], mean, scale)
                        - logits(net_a, xa_test[:500], mean, scale)).max())
    log(f"bvlc file read back: max |logit difference| {same:.3g}")

    # 2. Three arms on the B subset, same recipe.
    arms = {
        "finetune": dict(init_from=str(bvlc_path), num_classes=5),
        "finetune_frozen": dict(init_from=str(bvlc_path), num_classes=5, freeze=("conv1", "conv2")),
        "scratch": dict(),
    }
    results = {}
    for name, kw in arms.items():
        net = make_net(args.seed + 1)
        net, mults = prepare_finetune(net, seed=args.seed + 1, **kw)
        t0 = time.perf_counter()
        losses = train(net, xb, yb, args.finetune_epochs, args.lr, mean, scale, args.seed + 1,
                       lr_mults=mults, log=log, tag=name)
        acc = accuracy(net, xb_test, yb_test, mean, scale)
        results[name] = {"test_top1": acc, "train_top1": accuracy(net, xb, yb, mean, scale),
                         "final_train_loss": losses[-1], "losses": losses,
                         "lr_mults": mults, "prepare_finetune": {k: v for k, v in kw.items()},
                         "seconds": time.perf_counter() - t0}
        log(f"{name}: top-1 {acc:.4f} on the {len(yb_test)} test images of B")

    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "settings": vars(args), "input_scale": scale, "weight_stds": FAN_IN_STDS,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "classes_a": [ds.classes[c] for c in CLASSES_A],
        "classes_b": [ds.classes[c] for c in CLASSES_B],
        "pretrain": {"images": int(len(ya)), "epochs": args.pretrain_epochs,
                     "losses": pre_losses, "test_top1_on_a": acc_a},
        "bvlc_roundtrip_max_logit_diff": same,
        "finetune_subset_images": int(len(yb)), "test_images_b": int(len(yb_test)),
        "results": results,
        "seconds": time.perf_counter() - t_start,
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
    }
    text = json.dumps(report, indent=2)
    (out / "results.json").write_text(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    print(f"\npretrained on A ({len(ya)} images, {args.pretrain_epochs} epochs): "
          f"top-1 {acc_a:.4f} on A's test images")
    print(f"on B from {len(yb)} images, {args.finetune_epochs} epochs, "
          f"top-1 on {len(yb_test)} test images:")
    for name, r in results.items():
        print(f"  {name:16s} {r['test_top1']:.4f}   (train {r['train_top1']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
