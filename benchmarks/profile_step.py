"""Where a training step's time goes: each layer's forward and backward, timed alone.

    python benchmarks/profile_step.py --net fig1 --backend numba
    python benchmarks/profile_step.py --net alexnet --backend cupy --batch 128

Each layer is timed on the activations it sees in a real step (a fixed random
batch through the net), median of ``--repeats`` calls, after one warm-up; for
'cupy' the device is synchronized around every call.  The rows do not add up
to the step exactly (the step also runs the loss and the update, and layers
timed alone find their inputs warm in cache), but they show which layers
dominate.  A diagnosis tool, not the benchmark: ratios against PyTorch come
from ``bench_train.py``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_alexnet import alexnet, cifar_fig1  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", choices=("fig1", "alexnet"), default="fig1")
    p.add_argument("--backend", choices=("numpy", "numba", "cupy"), default="numba")
    p.add_argument("--batch", type=int, default=None, help="default: 128 (fig1), 32 (alexnet)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    batch = args.batch or (128 if args.net == "fig1" else 32)
    net = (cifar_fig1(seed=0) if args.net == "fig1" else alexnet(seed=0))
    net.to(args.backend, 0 if args.backend == "cupy" else None)
    x = np.random.default_rng(0).standard_normal((batch,) + net.input_shape).astype(np.float32)
    sync = lambda: None                                                    # noqa: E731
    if args.backend == "cupy":
        import cupy
        x = cupy.asarray(x)
        sync = cupy.cuda.Device(0).synchronize

    def timed(fn):
        fn()                                                               # warm-up
        ts = []
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            ts.append(time.perf_counter() - t0)
        return statistics.median(ts) * 1e3

    rows, h = [], x
    for i, layer in enumerate(net.layers):
        fwd = timed(lambda: layer.forward(h, True))
        out = layer.forward(h, True)                                        # its cache for the backward
        d = out * 0 + 1e-3                                                  # a dout of out's shape
        if i == 0:
            bwd = timed(lambda: layer.param_backward(d))
        else:
            bwd = timed(lambda: layer.backward(d))
        rows.append((layer.name, tuple(out.shape), fwd, bwd))
        h = out
    total = sum(r[2] + r[3] for r in rows)
    print(f"{args.net}, batch {batch}, backend {args.backend} (ms, median of {args.repeats})")
    print(f"{'layer':10s} {'output':22s} {'forward':>8s} {'backward':>9s} {'share':>6s}")
    for name, shape, f, b in rows:
        print(f"{name:10s} {str(shape):22s} {f:8.2f} {b:9.2f} {100 * (f + b) / total:5.1f}%")
    print(f"{'sum':33s} {sum(r[2] for r in rows):8.2f} {sum(r[3] for r in rows):9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
