"""Where a training step's time goes: each layer's forward and backward, the loss and the update.

    python benchmarks/profile_step.py --net fig1 --backend numba
    python benchmarks/profile_step.py --net alexnet --backend cupy --batch 128
    python benchmarks/profile_step.py --net fig1 --backend numba --alone

By default every op is timed *inside* real training steps (forward, softmax
cross-entropy, backward without conv1's dx, momentum-SGD update, on a fixed
random batch, as ``bench_train.py`` takes a step): each step of the net's
forward and backward (a layer, or a run of layers the backend fuses, such as
Numba's 'conv1+act1+pool1'), the loss and the update get their own clock, and the median over
``--repeats`` steps (after two warm-up steps) is reported, so the rows add
up to about the step and each op finds its inputs as the step leaves them.
``--alone`` instead times each layer by itself, called again and again on
the activations it sees in a step (its inputs warm in cache).  For 'cupy'
the device is synchronized around every timed call.  ``--cpu-time`` clocks
the CPU time the process spent (all its threads, spinning included) instead
of wall time: on a machine shared with other jobs that is the work each op
costs, where the wall time mostly measures the other jobs.  A diagnosis tool, not
the benchmark: ratios against PyTorch come from ``bench_train.py``.  ``--out FILE``
also writes the rows, the command and the machine as JSON (docs/results/profile_*.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numpy_alexnet import MomentumSGD, SoftmaxCrossEntropy, alexnet, cifar_fig1  # noqa: E402


def profile_in_step(net, x, y, repeats: int, sync, clock=time.perf_counter) -> tuple[list, float]:
    """Rows (name, output shape, forward ms, backward ms), the loss and the update
    as two more rows, and the median step (ms)."""
    crit = SoftmaxCrossEntropy()
    opt = MomentumSGD(net, lr=0.001, momentum=0.9, weight_decay=0.0005)
    clocks: dict[tuple, list] = {}
    shapes: dict[str, tuple] = {}

    def timed(key, fn):
        def call(*args, **kwargs):
            sync()
            t0 = clock()
            out = fn(*args, **kwargs)
            sync()
            clocks.setdefault(key, []).append(clock() - t0)
            if key[1] == "f":
                shapes[key[0]] = tuple(getattr(out, "shape", ()))
            return out
        return call

    # The steps as Sequential runs them: the layers, or a backend's fused runs of them
    # (Numba: conv+relu+pool), made once and kept so that each keeps its clock.
    steps = net.steps
    for step in steps:                            # instance attributes shadow the methods
        step.forward = timed((step.name, "f"), step.forward)
        step.backward = timed((step.name, "b"), step.backward)
        step.param_backward = timed((step.name, "b"), step.param_backward)
    loss_f = timed(("loss", "f"), crit.forward)
    loss_b = timed(("loss", "b"), crit.backward)
    update = timed(("update", "f"), opt.step)
    times = []
    for i in range(repeats + 2):                  # two warm-up steps
        if i == 2:
            clocks.clear()
        sync()
        t0 = clock()
        h = net.forward(x, True)
        loss_f(h, y)
        net.backward(loss_b(), input_grad=False)
        update()
        sync()
        if i >= 2:
            times.append(clock() - t0)
    med = lambda key: statistics.median(clocks[key]) * 1e3 if key in clocks else 0.0  # noqa: E731
    rows = [(step.name, shapes[step.name], med((step.name, "f")), med((step.name, "b")))
            for step in steps]
    rows.append(("loss", (), med(("loss", "f")), med(("loss", "b"))))
    rows.append(("update", (), med(("update", "f")), 0.0))
    return rows, statistics.median(times) * 1e3


def profile_alone(net, x, repeats: int, sync) -> list:
    """Rows (name, output shape, forward ms, backward ms), each layer timed by itself."""
    def timed(fn):
        fn()                                                               # warm-up
        ts = []
        for _ in range(repeats):
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
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", choices=("fig1", "alexnet"), default="fig1")
    p.add_argument("--backend", choices=("numpy", "numba", "cupy"), default="numba")
    p.add_argument("--batch", type=int, default=None, help="default: 128 (fig1), 32 (alexnet)")
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu",
                   help="fig1: the neuron (the Figure-1 study trains both)")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--alone", action="store_true", help="time each layer by itself, not in a step")
    p.add_argument("--cpu-time", action="store_true",
                   help="in steps: CPU time of the process (all its threads) instead of wall time")
    p.add_argument("--out", default=None, help="also write the profile as JSON to this file")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    batch = args.batch or (128 if args.net == "fig1" else 32)
    net = (cifar_fig1(seed=0, activation=args.activation) if args.net == "fig1" else alexnet(seed=0))
    net.to(args.backend, 0 if args.backend == "cupy" else None)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch,) + net.input_shape).astype(np.float32)
    y = rng.integers(0, net.shapes()[-1][0], batch)                        # class labels
    sync = lambda: None                                                    # noqa: E731
    if args.backend == "cupy":
        import cupy
        x, y = cupy.asarray(x), cupy.asarray(y)
        sync = cupy.cuda.Device(0).synchronize

    if args.alone:
        rows, step = profile_alone(net, x, args.repeats, sync), None
        how = "each layer alone"
    else:
        clock = time.process_time if args.cpu_time else time.perf_counter
        rows, step = profile_in_step(net, x, y, args.repeats, sync, clock)
        how = "inside training steps" + (", CPU time of all threads" if args.cpu_time else "")
    total = sum(r[2] + r[3] for r in rows)
    what = f"{args.net} ({args.activation})" if args.net == "fig1" else args.net
    print(f"{what}, batch {batch}, backend {args.backend}, {how} "
          f"(ms, median of {args.repeats})")
    print(f"{'op':18s} {'output':22s} {'forward':>8s} {'backward':>9s} {'share':>6s}")
    for name, shape, f, b in rows:
        print(f"{name:18s} {str(shape):22s} {f:8.2f} {b:9.2f} {100 * (f + b) / total:5.1f}%")
    print(f"{'sum':41s} {sum(r[2] for r in rows):8.2f} {sum(r[3] for r in rows):9.2f}"
          f"   (forward + backward {total:.1f})")
    if step is not None:
        print(f"{'median step':41s} {step:8.2f}")
    if args.out:
        write_json(args, what, batch, how, rows, step, load_before)
    return 0


def write_json(args, what: str, batch: int, how: str, rows: list, step, load_before) -> None:
    from bench_train import cpu_model                     # benchmarks/ is on sys.path
    result = {
        "command": "python benchmarks/profile_step.py " + " ".join(sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "net": what, "batch": batch, "backend": args.backend, "clock": how,
        "repeats": args.repeats, "unit": "ms, median over the repeats",
        "rows": [{"op": name, "output": list(shape), "forward_ms": f, "backward_ms": b}
                 for name, shape, f, b in rows],
        "median_step_ms": step,
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    sys.exit(main())
