"""Is the data pipeline fast enough?  Augmented CIFAR batches/s against a training step.

    python benchmarks/bench_data.py [--archive ../shared/data/cifar10-jpeg.tar.gz]
                                    [--out docs/results/data_pipeline.json]

Measures, on the shared CIFAR-10 archive (decoded once, then read from the cache):

1. the first decode (only when the cache is cold) and a cached load;
2. the augmentation alone, in the calling thread: batches of 128 per second for
   the cuda-convnet recipe (24x24 crops of 32x32, reflection, PCA colour, mean
   image) and for the full 32x32 image (reflection, PCA colour, mean image);
3. the BatchIterator (gather + augment, background thread) with an idle consumer;
4. one training step (forward, loss, backward, momentum SGD) of the Figure-1
   net, ``numpy_alexnet.models.cifar_fig1()``, batch 128, on a fixed batch;
5. the same steps fed by the BatchIterator: if the pipeline kept up, steps/s
   is the same as in 4.

Also, for scale, the paper's ImageNet recipe (227 crops of 256x256 images) on
random uint8 images.  The machine may be shared: the load average is recorded,
and CPU times (which other programs hardly change) are given next to the wall
times.  Each figure is the best of three interleaved rounds.

With ``--folder DIR`` (an image folder such as ImageNet's, too large for RAM)
it measures instead the streaming path, ``numpy_alexnet.data.stream``, feeding
the paper's AlexNet (227 crops of 256x256, reflection, PCA colour):

    python benchmarks/bench_data.py --make-folder /tmp/folder256 --per-class 2000
    python benchmarks/bench_data.py --folder /tmp/folder256 --stream-batch 32 --steps 6

(``--make-folder`` writes CIFAR-10 from ``--archive`` rescaled to 256x256
JPEGs, ``--per-class`` training images a class and a tenth of that for test:
an ImageNet-sized folder to stream, kept out of the repository.)

1. listing the folder, and the mean image and RGB PCA in one streamed pass;
2. in alternating rounds: the loader alone (images/s pulled by an idle
   consumer) and one AlexNet training step on a fixed batch (images/s);
3. ``--steps`` steps fed by the loader: images/s, and the time each step
   waited for its batch (near 0 when the loader keeps up);
4. peak resident memory of the training process and of each worker.
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

from numpy_alexnet.data import (BatchIterator, TrainTransform, load_dataset,  # noqa: E402
                                mean_image, pca_eigen)

BATCH = 128


def per_call(fn, calls):
    """(wall seconds, CPU seconds of the whole process) per call of fn, over ``calls`` calls.

    The CPU time counts every thread (BLAS's too) and hardly changes when other
    programs share the machine; the wall time does.
    """
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - w0) / calls, (time.process_time() - c0) / calls


def calls_for(fn, seconds):
    """How many calls of fn fill about ``seconds`` (at least 3); runs fn once to warm up."""
    t0 = time.perf_counter()
    fn()
    return int(np.clip(seconds / max(time.perf_counter() - t0, 1e-6), 3, 5000))


def best_of(fns: dict, calls: int, rounds: int = 3) -> dict:
    """Interleaved rounds (so a change in the machine's load hits all alike);
    for each fn the smallest (wall, cpu) seconds per call."""
    best = {k: [float("inf"), float("inf")] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            wall, cpu = per_call(fn, calls)
            best[k] = [min(best[k][0], wall), min(best[k][1], cpu)]
    return best


def iterator_rate(it, batches):
    """Batches per second pulled from a BatchIterator with an idle consumer."""
    t0, n = time.perf_counter(), 0
    for _ in it.epoch_iter(0):
        n += 1
        if n == batches:
            break
    return n / (time.perf_counter() - t0)


def fig1_step_fn(input_size, backend="numpy"):
    """One SGD step of the Figure-1 net on a batch (x, y): returns step(x, y)."""
    from numpy_alexnet.layers import SoftmaxCrossEntropy
    from numpy_alexnet.models import cifar_fig1
    from numpy_alexnet.optim import MomentumSGD
    net = cifar_fig1("relu", input_size=input_size)
    if backend != "numpy":
        net.to(backend)
    loss = SoftmaxCrossEntropy(name="loss")
    opt = MomentumSGD(net, lr=0.001, momentum=0.9, weight_decay=0.0)

    def step(x, y):
        logits = net.forward(x, train=True)
        value = loss.forward(logits, y)
        net.backward(loss.backward())
        opt.step()
        return value
    return step


def time_fig1(backend, x, y, recipes, res, rng, seconds):
    """The Figure-1 step on a fixed batch, and fed by the iterator (prefetching in
    its thread, and without the thread)."""
    name = "full32_flip_pca_mean"
    step = fig1_step_fn(32, backend)
    xb, yb = recipes[name](x[:BATCH], rng), y[:BATCH]
    step(xb, yb)                                           # warm up (and compile)
    n_steps = calls_for(lambda: step(xb, yb), seconds)
    epochs = iter(range(1, 10**6))

    def fed(prefetch):
        it = BatchIterator(x, y, BATCH, seed=0, transform=recipes[name], prefetch=prefetch)
        batches = it.epoch_iter(next(epochs))
        return lambda: step(*next(batches))

    # One step per call: the iterator's setup and first batch fall outside the rounds.
    feeders = {"prefetch": fed(True), "no_thread": fed(False)}
    for f in feeders.values():
        f()
    best = best_of({"fixed": lambda: step(xb, yb), **feeders}, n_steps)
    (wall, cpu), aug = best["fixed"], res["augment"][name]
    out = {
        "model": "numpy_alexnet.models.cifar_fig1('relu'), float32, 32x32 input, batch 128",
        "recipe": name, "steps_per_round": n_steps,
        "step_ms_fixed_batch": round(1000 * wall, 1),
        "step_cpu_ms": round(1000 * cpu, 1),
        "steps_per_s_fixed_batch": round(1 / wall, 3),
        "steps_per_s_with_prefetching_iterator": round(1 / best["prefetch"][0], 3),
        "steps_per_s_with_iterator_no_thread": round(1 / best["no_thread"][0], 3),
        "augment_ms_per_batch": aug["ms_per_batch"],
        "augment_cpu_ms_per_batch": aug["cpu_ms_per_batch"],
        "step_cpu_over_augment_cpu": round(1000 * cpu / aug["cpu_ms_per_batch"], 1),
    }
    print(f"fig1 net on {backend}: {1000 * wall:.0f} ms a step ({1000 * cpu:.0f} ms CPU) on a "
          f"fixed batch = {out['step_cpu_over_augment_cpu']}x the CPU time of augmenting its "
          f"batch; {out['steps_per_s_fixed_batch']:.3f} steps/s fixed, "
          f"{out['steps_per_s_with_prefetching_iterator']:.3f} fed by the prefetching iterator, "
          f"{out['steps_per_s_with_iterator_no_thread']:.3f} without the thread", flush=True)
    return out


def proc_mb(pid: int, field: str) -> float:
    """``field`` of /proc/<pid>/status in MB: VmRSS (resident now) or VmHWM (its peak).

    Linux only (0 elsewhere).  A worker's own peak is read here, not from
    getrusage(RUSAGE_CHILDREN): that one counts a spawned child's memory before
    its exec, i.e. a copy of the parent's resident size.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def alexnet_step_fn(num_classes: int, backend: str):
    """One SGD step of the paper's AlexNet (the paper's momentum and weight decay)."""
    from numpy_alexnet.layers import SoftmaxCrossEntropy
    from numpy_alexnet.models import alexnet
    from numpy_alexnet.optim import MomentumSGD
    net = alexnet(num_classes=num_classes, seed=0)
    if backend != "numpy":
        net.to(backend)
    loss = SoftmaxCrossEntropy(name="loss")
    opt = MomentumSGD(net, lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step(x, y):
        value = loss.forward(net.forward(x, train=True), y)
        net.backward(loss.backward(), input_grad=False)
        opt.step()
        return float(value)
    return step


def make_folder(archive: str, dest: Path, per_class: int) -> int:
    """CIFAR-10 from ``archive`` rescaled (bilinear) to 256x256 JPEGs (quality 90) under
    dest/{train,test}/<class>/: ``per_class`` training images a class, per_class // 10 test."""
    import io
    import tarfile

    from PIL import Image
    written: dict = {}
    with tarfile.open(archive, "r|*") as tf:
        for member in tf:
            parts = member.name.split("/")
            if not member.isfile() or not member.name.endswith(".jpg") or len(parts) < 3:
                continue
            split, cls = parts[-3], parts[-2]
            limit = per_class if split == "train" else max(1, per_class // 10)
            if written.get((split, cls), 0) >= limit:
                continue
            written[(split, cls)] = written.get((split, cls), 0) + 1
            img = Image.open(io.BytesIO(tf.extractfile(member).read())).convert("RGB")
            out = dest / split / cls / parts[-1]
            out.parent.mkdir(parents=True, exist_ok=True)
            img.resize((256, 256), Image.BILINEAR).save(out, quality=90)
    return sum(written.values())


def stream_bench(args) -> dict:
    """AlexNet fed from an image folder on disk: loader against step, and memory."""
    import multiprocessing

    from numpy_alexnet.data import ImageFolder, StreamingBatchIterator
    B, W = args.stream_batch, args.workers
    res: dict = {"command": "python benchmarks/bench_data.py " + " ".join(sys.argv[1:]),
                 "folder": str(args.folder), "batch_size": B, "workers": W,
                 "backend": args.stream_backend,
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "numpy": np.__version__, "platform": platform.platform(),
                             "loadavg_at_start": list(os.getloadavg())}}
    t0 = time.perf_counter()
    folder = ImageFolder(args.folder, resize=args.resize)
    train = folder.train
    res["images"] = {name: len(s) for name, s in folder.splits.items()}
    res["image_size"] = list(train.image_size)
    res["list_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    st = folder.stats(workers=W, progress=False)
    res["stats_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"listed {res['images']} images of {train.image_size} in {res['list_seconds']} s; "
          f"mean image and PCA in {res['stats_seconds']} s", flush=True)
    save(res, args.out)

    tf = TrainTransform(st.mean_image, 227, st.eigvals, st.eigvecs)
    rss_listed = proc_mb(os.getpid(), "VmRSS")
    it = StreamingBatchIterator(train, train.labels, B, seed=0, transform=tf, workers=W)
    step = alexnet_step_fn(len(folder.classes), args.stream_backend)
    worker_peak: dict[int, float] = {}

    def sample_workers():
        for p in multiprocessing.active_children():
            worker_peak[p.pid] = max(worker_peak.get(p.pid, 0.0), proc_mb(p.pid, "VmHWM"))

    # Alternating rounds: the loader alone (idle consumer), then one step on a fixed batch.
    loader, steps, xb, yb = [], [], None, None
    for r in range(args.rounds):
        batches = it.epoch_iter(r)
        t0 = time.perf_counter()
        x, y = next(batches)                                    # includes starting the workers
        res.setdefault("first_batch_seconds", round(time.perf_counter() - t0, 2))
        if xb is None:
            xb, yb = x, y
            step(xb, yb)                                        # warm up (Numba compiles)
        t0 = time.perf_counter()
        for _ in range(args.loader_batches):
            next(batches)
        loader.append(args.loader_batches * B / (time.perf_counter() - t0))
        sample_workers()
        batches.close()
        t0 = time.perf_counter()
        step(xb, yb)
        steps.append(B / (time.perf_counter() - t0))
    res["loader_images_per_s"] = [round(v, 1) for v in loader]
    res["step_images_per_s_fixed_batch"] = [round(v, 2) for v in steps]
    print(f"loader alone: {max(loader):.0f} images/s; AlexNet step on a fixed batch: "
          f"{max(steps):.2f} images/s (best of {args.rounds} alternating rounds)", flush=True)
    save(res, args.out)

    # The steps fed by the loader: how long each waited for its batch.
    waits, losses = [], []
    batches = it.epoch_iter(args.rounds)
    next(batches)                                               # workers started, queue full
    t_start = time.perf_counter()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        x, y = next(batches)
        waits.append(time.perf_counter() - t0)
        losses.append(step(x, y))
        sample_workers()
    total = time.perf_counter() - t_start
    batches.close()
    main_peak = proc_mb(os.getpid(), "VmHWM")
    one_worker = max(worker_peak.values(), default=0.0)
    res["fed"] = {"steps": args.steps, "images_per_s": round(args.steps * B / total, 2),
                  "wait_for_batch_s": [round(w, 3) for w in waits],
                  "wait_fraction": round(sum(waits) / total, 4),
                  "losses": [round(v, 4) for v in losses]}
    res["memory_mb"] = {
        "rss_main_after_listing_and_stats": round(rss_listed),
        "peak_rss_main": round(main_peak),
        "peak_rss_largest_worker": round(one_worker),
        "peak_rss_main_plus_workers_at_most": round(main_peak + W * one_worker),
        "in_ram_uint8_train_images_would_need": round(len(train) * 3 * np.prod(
            train.image_size) / 2**20)}
    res["machine"]["loadavg_at_end"] = list(os.getloadavg())
    print(f"fed by the loader: {res['fed']['images_per_s']} images/s over {args.steps} steps, "
          f"waiting {100 * res['fed']['wait_fraction']:.1f}% of the time for a batch; "
          f"losses {res['fed']['losses']}", flush=True)
    mem = res["memory_mb"]
    print(f"peak RSS: {mem['peak_rss_main']} MB the training process, "
          f"{mem['peak_rss_largest_worker']} MB the largest worker, "
          f"{mem['peak_rss_main_plus_workers_at_most']} MB all together at most (the training "
          f"images decoded into RAM would be {mem['in_ram_uint8_train_images_would_need']} MB "
          "alone)", flush=True)
    save(res, args.out)
    print(f"wrote {args.out}")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archive", default=str(ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"))
    p.add_argument("--out", default=str(ROOT / "docs" / "results" / "data_pipeline.json"))
    p.add_argument("--seconds", type=float, default=2.0, help="length of each timing round")
    p.add_argument("--backends", default="numpy,numba",
                   help="backends to time the Figure-1 step on (comma-separated)")
    p.add_argument("--folder", type=Path, default=None,
                   help="an image folder split/class/image to stream from disk (see above)")
    p.add_argument("--resize", type=int, default=256,
                   help="with --folder: short side to this, central square (default 256)")
    p.add_argument("--workers", type=int, default=2, help="with --folder: loader processes")
    p.add_argument("--stream-batch", type=int, default=32, help="with --folder: batch size")
    p.add_argument("--stream-backend", default="numba",
                   help="with --folder: AlexNet's backend (numpy, numba or cupy)")
    p.add_argument("--steps", type=int, default=4, help="with --folder: steps fed by the loader")
    p.add_argument("--rounds", type=int, default=2,
                   help="with --folder: alternating rounds of loader alone / fixed-batch step")
    p.add_argument("--loader-batches", type=int, default=8,
                   help="with --folder: batches pulled in each loader-alone round")
    p.add_argument("--make-folder", type=Path, default=None,
                   help="write CIFAR-10 from --archive as 256x256 JPEGs into this folder, then stop")
    p.add_argument("--per-class", type=int, default=2000,
                   help="with --make-folder: training images a class (test: a tenth)")
    args = p.parse_args(argv)
    if args.make_folder is not None:
        n = make_folder(args.archive, args.make_folder, args.per_class)
        print(f"wrote {n} images of 256x256 under {args.make_folder}")
        return 0
    if args.folder is not None:
        if args.out == p.get_default("out"):
            args.out = str(ROOT / "docs" / "results" / "data_stream.json")
        stream_bench(args)
        return 0
    res: dict = {"command": "python benchmarks/bench_data.py", "batch_size": BATCH,
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                             "numpy": np.__version__, "platform": platform.platform(),
                             "loadavg_at_start": list(os.getloadavg())}}

    # 1. Loading.
    t0 = time.perf_counter()
    ds = load_dataset(args.archive)
    res["load_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    ds = load_dataset(args.archive, progress=False)
    res["cached_load_seconds"] = round(time.perf_counter() - t0, 3)
    x, y = np.array(ds.train.images), ds.train.labels        # a copy in RAM, not the mapped file
    stats = ds.stats()
    print(f"loaded {x.shape} in {res['load_seconds']} s; cached load "
          f"{res['cached_load_seconds']} s", flush=True)

    # 2. Augmentation alone, calling thread.
    recipes = {
        "crop24_flip_pca_mean": TrainTransform(stats.mean_image, 24, stats.eigvals, stats.eigvecs),
        "full32_flip_pca_mean": TrainTransform(stats.mean_image, None, stats.eigvals, stats.eigvecs),
    }
    rng = np.random.default_rng(0)
    res["augment"] = {}
    fns = {}
    for name, tf in recipes.items():
        def one(tf=tf):
            idx = rng.integers(0, len(x), BATCH)
            return tf(x[idx], rng)
        fns[name] = one
    best = best_of(fns, max(calls_for(f, args.seconds) for f in fns.values()))
    for name, (wall, cpu) in best.items():
        res["augment"][name] = {"batches_per_s": round(1 / wall, 1),
                                "ms_per_batch": round(1000 * wall, 3),
                                "cpu_ms_per_batch": round(1000 * cpu, 3)}
        print(f"augment {name}: {1 / wall:.0f} batches/s ({BATCH / wall:.0f} images/s), "
              f"{1000 * cpu:.2f} ms CPU a batch", flush=True)
    save(res, args.out)

    # 3. The iterator (background thread), idle consumer.
    res["iterator_batches_per_s"] = {}
    for name, tf in recipes.items():
        it = BatchIterator(x, y, BATCH, seed=0, transform=tf)
        r = iterator_rate(it, len(it))
        res["iterator_batches_per_s"][name] = round(r, 1)
        print(f"iterator {name}: {r:.0f} batches/s (one epoch, {len(it)} batches)", flush=True)
    save(res, args.out)

    # 4-5. The Figure-1 training step on each backend that runs here.
    res["fig1_training"] = {}
    for backend in args.backends.split(","):
        try:
            res["fig1_training"][backend] = time_fig1(backend, x, y, recipes, res, rng,
                                                      args.seconds)
        except Exception as err:      # a backend missing on this machine is reported, not fatal
            res["fig1_training"][backend] = f"not measured: {type(err).__name__}: {err}"
            print(f"fig1 net on {backend}: not measured ({err})")
        save(res, args.out)

    # For scale: the paper's recipe at ImageNet size on random images.
    big = np.random.default_rng(1).integers(0, 256, size=(BATCH, 3, 256, 256), dtype=np.uint8)
    big_tf = TrainTransform(mean_image(big), 227, *pca_eigen(big))
    (wall, cpu), = best_of({"big": lambda: big_tf(big, rng)}, calls_for(lambda: big_tf(big, rng),
                                                                          args.seconds)).values()
    res["augment"]["imagenet_crop227_of_256_flip_pca_mean"] = {
        "batches_per_s": round(1 / wall, 2), "ms_per_batch": round(1000 * wall, 1),
        "cpu_ms_per_batch": round(1000 * cpu, 1)}
    print(f"augment 227 crops of 256x256: {1 / wall:.1f} batches/s ({BATCH / wall:.0f} images/s)")

    res["machine"]["loadavg_at_end"] = list(os.getloadavg())
    res["note"] = ("the 24x24 recipe has no Figure-1 net to time (cifar_fig1's fc10 expects the "
                   "3x3x64 map of a 32x32 input); its step would cost about (24/32)^2 of the 32x32 one")
    save(res, args.out)
    print(f"wrote {args.out}")
    return 0


def save(res, path):
    """Write what is measured so far (a run cut short still leaves its figures)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
