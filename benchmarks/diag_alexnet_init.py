"""Why does AlexNet's loss not fall on a small CIFAR-10-at-256 subset?  Cheap checks.

    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/diag_alexnet_init.py \\
        --data ../shared/data/cifar10-jpeg.tar.gz --limit-per-class 30 --batch-size 32

Prints, for one training batch exactly as ``numpy-alexnet train --model alexnet``
builds it (256 rescale, random 227 crops, reflections, PCA colour, mean image
subtracted, 0-255 scale):

1. the input's scale and the label counts of the batch, and an alignment
   check of labels and images (nearest class mean of the test split, on
   8x8 thumbnails: above chance only if labels follow their images);
2. per layer, the activation's RMS, its image-dependent part (the RMS over
   units of the standard deviation across the batch) and their ratio;
3. the logits: their spread across images against their spread across
   dropout draws of the same batch;
4. per parameter, the gradient norm and lr * |g| / |w| at the given rate,
   and the first-step change of the logits that fc8's update alone makes.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def rms(a):
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def per_image_spread(a):
    """RMS over units of the std across the batch: the part that depends on the image."""
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    return float(np.sqrt(np.mean(a.var(axis=0))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/cifar10-jpeg.tar.gz")
    p.add_argument("--limit-per-class", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--backend", default="numba")
    p.add_argument("--init", default="paper", help="alexnet initialization (see models.ALEXNET_INITS)")
    p.add_argument("--input-scale", default="raw", choices=("raw", "unit"))
    p.add_argument("--draws", type=int, default=4, help="dropout draws of the same batch")
    args = p.parse_args(argv)

    from numpy_alexnet.layers import SoftmaxCrossEntropy
    from numpy_alexnet.training.recipe import build_model, prepare_data

    d = prepare_data(args.data, 227, resize=256, limit_per_class=args.limit_per_class,
                     augment="paper", eval_crops="ten", progress=False,
                     input_scale=args.input_scale)
    ds = d["dataset"]
    xtr, ytr = d["x_train"], d["y_train"]
    print(f"classes {ds.classes}")
    print(f"train {xtr.shape} {xtr.dtype}, counts {np.bincount(ytr, minlength=10).tolist()}")

    # -- 1. labels follow images? nearest class mean on 8x8 thumbnails ------------
    def thumbs(x):
        n = len(x)
        return x.reshape(n, 3, 8, 32, 8, 32).astype(np.float32).mean(axis=(3, 5)).reshape(n, -1)
    tr = thumbs(xtr)
    te_split = ds["test"]
    te, yte = thumbs(te_split.images), te_split.labels
    centroids = np.stack([tr[ytr == c].mean(axis=0) for c in range(10)])
    dist = ((te[:, None, :] - centroids[None]) ** 2).sum(-1)
    acc = float((dist.argmin(1) == yte).mean())
    rng = np.random.default_rng(0)
    shuffled = np.stack([tr[rng.permutation(ytr) == c].mean(axis=0) for c in range(10)])
    acc_shuf = float((((te[:, None, :] - shuffled[None]) ** 2).sum(-1).argmin(1) == yte).mean())
    print(f"alignment: nearest class mean on 8x8 thumbnails, test accuracy {acc:.3f} "
          f"(labels shuffled: {acc_shuf:.3f}; chance 0.100)")

    # -- the batch the trainer sees -------------------------------------------------
    from numpy_alexnet.data import BatchIterator
    it = BatchIterator(xtr, ytr, args.batch_size, shuffle=True, seed=0,
                       transform=d["train_transform"], prefetch=False)
    x, y = it.make_batch(0, 0)
    print(f"batch x {x.shape} {x.dtype}: mean {x.mean():.2f}, std {x.std():.2f}, "
          f"min {x.min():.1f}, max {x.max():.1f}; labels {np.bincount(y, minlength=10).tolist()}")

    net = build_model("alexnet", 10, 0, None if args.init == "paper" else args.init)
    net = net.to(args.backend)

    # -- 2. per-layer forward scales ----------------------------------------------
    print(f"\n{'layer':8s} {'rms':>10s} {'per-image':>10s} {'ratio':>7s}  frac>0")
    h = x
    for layer in net:
        h = layer.forward(h, train=True)
        a = np.asarray(h)
        print(f"{layer.name:8s} {rms(a):10.4g} {per_image_spread(a):10.4g} "
              f"{per_image_spread(a) / max(rms(a), 1e-30):7.3f}  {float((a > 0).mean()):.2f}")
    logits = np.asarray(h)

    # -- 3. logits: images against dropout draws ----------------------------------
    draws = [np.asarray(net.forward(x, train=True)) for _ in range(args.draws)]
    draws = np.stack(draws)                                   # (D, N, K)
    test_logits = np.asarray(net.forward(x, train=False))
    print(f"\nlogits (train mode): rms {rms(logits):.4g}; spread across images "
          f"{per_image_spread(logits):.4g}; spread across {args.draws} dropout draws of the "
          f"same images {float(np.sqrt(draws.var(axis=0).mean())):.4g}")
    print(f"logits (test mode):  spread across images {per_image_spread(test_logits):.4g}; "
          f"mean over classes of |mean logit| {float(np.abs(test_logits.mean(0)).mean()):.4g}")

    # -- 4. gradients ------------------------------------------------------------
    loss_fn = SoftmaxCrossEntropy()
    logits = net.forward(x, train=True)
    loss = float(loss_fn.forward(logits, y))
    net.backward(loss_fn.backward())
    print(f"\nloss {loss:.4f} (ln 10 = {np.log(10):.4f})")
    print(f"{'param':10s} {'|w|':>10s} {'|g|':>10s} {'lr|g|/|w|':>10s}")
    for name, layer, key in net.named_params():
        w, g = np.asarray(layer.params[key]), np.asarray(layer.grads[key])
        nw, ng = float(np.linalg.norm(w)), float(np.linalg.norm(g))
        print(f"{name:10s} {nw:10.4g} {ng:10.4g} {args.lr * ng / max(nw, 1e-30):10.3g}")
    # fc8's own update, on this batch's fc7 output: how far does one step move the logits?
    fc8 = net["fc8"]
    h7 = np.asarray(fc8.cache)
    dW, db = np.asarray(fc8.grads["W"]), np.asarray(fc8.grads["b"])
    dz = -args.lr * (h7 @ dW + db)                          # (N, K)
    print(f"\nfc7 output (fc8 input): rms {rms(h7):.4g}, |h|^2 per image {float((h7 ** 2).sum(1).mean()):.4g}")
    print(f"one step at lr {args.lr:g}: fc8's update alone moves the logits by rms {rms(dz):.4g} "
          f"(of which image-dependent {per_image_spread(dz):.4g}); with momentum 0.9 the "
          f"steady-state move is about 10x that")
    return 0


if __name__ == "__main__":
    sys.exit(main())
