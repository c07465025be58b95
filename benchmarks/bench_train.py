"""Training-step throughput and peak memory of every backend, against PyTorch, in one run.

    python benchmarks/bench_train.py                       # CPU: numpy, numba, torch
    python benchmarks/bench_train.py --device gpu --out docs/results/bench_gpu.json
    python benchmarks/bench_train.py --nets fig1 --floor     # and the GEMMs alone
    python benchmarks/bench_train.py --device gpu --nets conv_local   # the ablation study's net

Nets and batches: the Figure-1 net (``cifar_fig1``, 32x32x3, batch 128),
the paper's AlexNet (227x227x3, 1000 classes; batch 32 on the CPU, 128 on a
GPU) and, with ``--nets conv_local``, cuda-convnet's conv-local 11% net that
the ablation study trains (``cifar_conv_local_11pct``, 24x24x3, batch 128;
its PyTorch peer makes each locally connected layer of unfold and a batched
product, as PyTorch has none).  A *training step* is forward, softmax cross-entropy, backward and one
momentum-SGD update (momentum 0.9, weight decay 0.0005) on a fixed random
batch.

Fairness:
* The PyTorch peer is the same network (AlexNet with groups=2, LRN with
  ``alpha=5e-4`` in PyTorch's alpha/n convention, dropout 0.5) and the same
  optimizer (``torch.optim.SGD``; its momentum formula differs from the
  paper's by where lr is applied, the cost is the same).  On the CPU it uses
  its own threads (``torch.get_num_threads()``) on the same cores; on a GPU
  it runs float32 with TF32 off, cuDNN as shipped.
* All backends are timed in the same process, interleaved (A B C A B C ...)
  after one untimed warm-up step each, so that load from other processes
  on a shared machine hits them alike; the median step is reported, and the
  load average before and after is recorded.  Each backend's turn starts
  with a pause (``SETTLE_S``, not timed), so that the previous backend's
  spinning BLAS threads do not take its cores, and one untimed step, since
  the first step after a pause runs cold; then its steps are timed back to
  back, as training runs them.
* BLAS threads: the Numba backend sets OpenBLAS to one thread for the
  process (its convolutions run on their own pool of threads); the NumPy
  backend's steps are timed with OpenBLAS's default count restored
  (``threadpool_limits``), as it would have in a process of its own.
* Numba's first compilation is kept out of the timings: it is measured
  separately, in a child process with an empty cache (``NUMBA_CACHE_DIR``),
  together with the time to load the compiled kernels from a warm cache.
* Peak memory is measured in a child process per (net, backend): on the CPU
  the peak resident set (VmHWM, reset through ``/proc/self/clear_refs``)
  while the net and the batch are made and two steps run, above the
  resident set before, with the libraries imported and the compiled kernels
  loaded: the parameters, gradients, velocities, activations and
  temporaries of training, whenever each is allocated; on a GPU the bytes
  held by CuPy's memory pool (``total_bytes``) or PyTorch's caching
  allocator (``max_memory_reserved``) after two steps.

``--floor`` also times ``numba-gemms`` (``GemmFloorRunner``): the matrix
products of the Numba backend's convolutions and nothing else, on the same
chunks and threads.  It is not a backend but a floor: how fast a step whose
convolutions are im2col + GEMM could be on this machine if everything around
the GEMMs were free.

Results go to a JSON file (``--out``); ``--markdown`` prints the table used
in docs/performance.md.
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Each net: its registry name (numpy_alexnet.models.MODELS), input and classes.
NETS = {"fig1": dict(model="cifar_fig1_relu", shape=(3, 32, 32), classes=10),
        "alexnet": dict(model="alexnet", shape=(3, 227, 227), classes=1000),
        "conv_local": dict(model="cifar_conv_local_11pct", shape=(3, 24, 24), classes=10)}
BATCH = {("fig1", "cpu"): 128, ("fig1", "gpu"): 128, ("alexnet", "cpu"): 32,
         ("alexnet", "gpu"): 128, ("conv_local", "cpu"): 128, ("conv_local", "gpu"): 128}
LR = 0.001
# A pause, outside the timing, at the start of each backend's turn: OpenBLAS's worker
# threads spin for a while after a GEMM, and without it one backend's spinning
# threads would take cores from the next backend's step.
SETTLE_S = 0.3


def _blas_threads() -> int | None:
    """BLAS's thread count as the process started (before any backend changed it)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return max(counts) if counts else None


BLAS_THREADS = _blas_threads()


# -- the runners: one object per (net, backend) with a .step() ------------------------------
class OurRunner:
    """numpy_alexnet on 'numpy', 'numba' or 'cupy' (optionally as two towers)."""

    def __init__(self, net_name: str, backend: str, batch: int, towers=None):
        from numpy_alexnet import MomentumSGD, SoftmaxCrossEntropy, build_model
        self.backend = backend
        spec = NETS[net_name]
        if towers is not None:
            from numpy_alexnet.towers import two_tower_alexnet
            self.net = two_tower_alexnet(seed=0, devices=towers)
        else:
            self.net = build_model(spec["model"], seed=0).to(backend,
                                                             0 if backend == "cupy" else None)
        rng = np.random.default_rng(0)
        x = rng.standard_normal((batch,) + spec["shape"]).astype(np.float32)
        y = rng.integers(0, spec["classes"], batch)
        if backend == "cupy":
            import cupy
            x, y = cupy.asarray(x), cupy.asarray(y)
        self.x, self.y = x, y
        self.crit = SoftmaxCrossEntropy()
        self.opt = MomentumSGD(self.net, lr=LR, momentum=0.9, weight_decay=0.0005)

    def sync(self):
        if self.backend == "cupy":
            import cupy
            cupy.cuda.Device(0).synchronize()

    def step(self):
        if self.backend == "numpy" and BLAS_THREADS:
            # The Numba backend sets BLAS to one thread for the process (numba_threads.py);
            # the NumPy backend is timed with BLAS's own default, as in a process of its own.
            from threadpoolctl import threadpool_limits
            with threadpool_limits(BLAS_THREADS, user_api="blas"):
                return self._step()
        return self._step()

    def _step(self):
        loss = self.crit.forward(self.net.forward(self.x, train=True), self.y)
        self.net.backward(self.crit.backward(), input_grad=False)   # as PyTorch: no dx of x
        self.opt.step()
        return float(loss)


class GemmFloorRunner:
    """'numba-gemms': only the matrix products of the Numba backend's convolutions.

    For every convolution of the net, the products that ``numba_conv`` does in a
    training step (forward W @ cols; dW^T = cols @ dout^T; dcols = W^T @ dout,
    except for the first layer, whose input gradient the step skips), on the
    same chunks of the batch and the same threads (``numba_conv._chunk`` and
    ``numba_threads.over_chunks``, one-thread BLAS each) -- and nothing else: no unfolding,
    col2im, pooling, neurons, fully connected layer, loss or update; the
    input-gradient product at its exact size (the backend's 'wide' one, for
    stride-1 convolutions that are not 'same', is larger); random operands
    made once, so they are warm in cache.  A step
    that does its convolutions as im2col and these GEMMs cannot be faster
    than this on the machine: it is a floor, not a backend.
    """
    backend = "numba-gemms"

    def __init__(self, net_name: str, batch: int):
        from numpy_alexnet import build_model
        from numpy_alexnet.fast import numba_conv, numba_threads
        from numpy_alexnet.layers import Conv2D
        net = build_model(NETS[net_name]["model"], seed=0)
        rng = np.random.default_rng(0)
        self.batch, self.convs, self.flops = batch, [], 0
        shape, first = net.input_shape, True
        for layer in net.layers:
            out_shape = layer.output_shape(shape)
            if isinstance(layer, Conv2D):
                (C, _, _), (F, Ho, Wo) = shape, out_shape
                G, P = layer.groups, Ho * Wo
                CgKK = C // G * layer.kh * layer.kw
                nb = numba_conv._chunk(C, layer.kh, layer.kw, P, 4, batch)
                self.convs.append(dict(
                    nb=nb, P=P, input_grad=not first,
                    W=rng.standard_normal((G, F // G, CgKK), dtype=np.float32),
                    cols=rng.standard_normal((G, CgKK, nb * P), dtype=np.float32),
                    dout=rng.standard_normal((G, F // G, nb * P), dtype=np.float32)))
                self.flops += 2 * F * CgKK * P * batch * (2 if first else 3)
                first = False
            shape = out_shape
        self.over_chunks = numba_threads.over_chunks

    def sync(self):
        pass

    def step(self):
        for c in self.convs:
            W, cols, dout, P = c["W"], c["cols"], c["dout"], c["P"]

            def work(chunks, c=c):
                G, Fg, CgKK = W.shape
                out, dWt = np.empty_like(dout), np.empty((G, CgKK, Fg), np.float32)  # this thread's own
                dcols = np.empty_like(cols)
                for _, m in chunks:
                    mP = m * P                                           # a share's last chunk may be shorter
                    for g in range(W.shape[0]):
                        np.matmul(W[g], cols[g, :, :mP], out=out[g, :, :mP])
                        np.matmul(cols[g, :, :mP], dout[g, :, :mP].T, out=dWt[g])    # dW^T, as numba_conv
                        if c["input_grad"]:
                            np.matmul(W[g].T, dout[g, :, :mP], out=dcols[g, :, :mP])

            self.over_chunks(work, self.batch, c["nb"])
        return 0.0


def torch_net(net_name: str):
    import torch.nn as nn
    if net_name == "conv_local":
        return torch_conv_local()
    if net_name == "fig1":
        return nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2),
            nn.Flatten(), nn.Linear(576, 10))
    lrn = dict(size=5, alpha=5e-4, beta=0.75, k=2.0)        # = the paper's alpha 1e-4 on the sum
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.LocalResponseNorm(**lrn), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), nn.LocalResponseNorm(**lrn),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 1000))


def torch_conv_local():
    """cuda-convnet's conv-local 11% net in PyTorch, which has no locally connected layer:
    each is unfold (im2col) and one batched product per output position."""
    import torch
    import torch.nn as nn

    class Local(nn.Module):
        def __init__(self, c, f, k, pad, size):
            super().__init__()
            self.k, self.pad, self.size = k, pad, size
            self.weight = nn.Parameter(torch.randn(size * size, f, c * k * k) * 0.04)
            self.bias = nn.Parameter(torch.zeros(f, size, size))

        def forward(self, x):
            cols = nn.functional.unfold(x, self.k, padding=self.pad)           # (N, C*K*K, P)
            out = torch.einsum("pfk,nkp->nfp", self.weight, cols)               # (N, F, P)
            return out.reshape(x.shape[0], -1, self.size, self.size) + self.bias

    lrn = dict(size=5, alpha=0.001, beta=0.75, k=1.0)      # PyTorch divides alpha by size
    return nn.Sequential(
        nn.Conv2d(3, 64, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(**lrn), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(**lrn), nn.MaxPool2d(3, 2),
        Local(64, 32, 3, 1, 5), nn.ReLU(), Local(32, 32, 3, 1, 5), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 10))


class TorchRunner:
    def __init__(self, net_name: str, device: str, batch: int):
        import torch
        self.torch, self.device = torch, device
        if device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        torch.manual_seed(0)
        spec = NETS[net_name]
        self.net = torch_net(net_name).to(device).float().train()
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn((batch,) + spec["shape"], generator=g).to(device)
        self.y = torch.randint(0, spec["classes"], (batch,), generator=g).to(device)
        self.crit = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=LR, momentum=0.9, weight_decay=0.0005)

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.crit(self.net(self.x), self.y)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def make_runner(net_name: str, backend: str, batch: int):
    if backend == "torch":
        return TorchRunner(net_name, "cpu", batch)
    if backend == "torch-cuda":
        return TorchRunner(net_name, "cuda", batch)
    if backend == "numba-gemms":
        return GemmFloorRunner(net_name, batch)
    if backend == "cupy-towers(0,0)":
        return OurRunner(net_name, "cupy", batch, towers=(0, 0))
    if backend == "cupy-towers(0,1)":
        return OurRunner(net_name, "cupy", batch, towers=(0, 1))
    return OurRunner(net_name, backend, batch)


# -- measurements -----------------------------------------------------------------------------
def time_interleaved(net_name: str, backends: list[str], batch: int, rounds: int, steps: int):
    """{backend: [seconds per step, ...]}: warm-up each, then rounds of A B C interleaved."""
    runners = {b: make_runner(net_name, b, batch) for b in backends}
    for b, r in runners.items():
        r.step()                                         # warm-up (and any lazy compile)
        r.sync()
    times = {b: [] for b in backends}
    for _ in range(rounds):
        for b, r in runners.items():
            r.sync()
            time.sleep(SETTLE_S)                         # let the last backend's threads go idle
            r.step()                                     # untimed: the first step after a pause runs cold
            r.sync()
            for _ in range(steps):                       # then steps back to back, as in training
                t0 = time.perf_counter()
                r.step()
                r.sync()
                times[b].append(time.perf_counter() - t0)
    return times


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory_child(net_name: str, backend: str, batch: int) -> dict:
    """Run in a child process: peak memory of building the net and two training steps
    (see the module docstring)."""
    gpu = backend.startswith("cupy") or backend == "torch-cuda"
    if backend == "numba":
        numba_compile_child()            # load the compiled kernels (LLVM) before measuring
    elif backend.startswith("torch"):
        import torch  # noqa: F401      # the library's own memory is not the net's
    rss0 = _rss_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")                                 # reset VmHWM to the current RSS
        reset = True
    except OSError:
        reset = False
    runner = make_runner(net_name, backend, batch)
    if gpu and backend == "torch-cuda":
        runner.torch.cuda.reset_peak_memory_stats()
    elif gpu:
        import cupy
        cupy.get_default_memory_pool().free_all_blocks()
    for _ in range(2):
        runner.step()
    runner.sync()
    out = {"rss_before_net_MiB": rss0 / 1024, "peak_rss_MiB": _rss_kib("VmHWM") / 1024,
           "hwm_reset": reset}
    out["step_peak_MiB"] = out["peak_rss_MiB"] - out["rss_before_net_MiB"]
    if backend == "torch-cuda":
        out["gpu_peak_MiB"] = runner.torch.cuda.max_memory_reserved() / 2**20
    elif gpu:
        import cupy
        out["gpu_peak_MiB"] = cupy.get_default_memory_pool().total_bytes() / 2**20
    return out


def run_child(args: list[str], env: dict | None = None, timeout: int = 600) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve())] + args
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def numba_compile_child() -> dict:
    """Run in a child process: the time to get every numba kernel ready (float32)."""
    t0 = time.perf_counter()
    from numpy_alexnet.backend import get_ops
    ops = get_ops("numba")
    t_import = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    t0 = time.perf_counter()
    cols = ops.im2col(x, 3, 3, 1, 1)
    ops.col2im(cols, x.shape, 3, 3, 1, 1)
    for kind in ("max", "avg"):
        out, state = getattr(ops, f"{kind}pool_forward")(x, 3, 3, 2)
        getattr(ops, f"{kind}pool_backward")(out, state, x.shape, 3, 3, 2)
    out, scale = ops.lrn_forward(x, 5, 2.0, 1e-4, 0.75)
    ops.lrn_backward(out, x, out, scale, 5, 2.0, 1e-4, 0.75)
    W, b = rng.standard_normal((6, 4, 3, 3)).astype(np.float32), np.zeros(6, np.float32)
    for stride in (1, 2):                                   # 'same' and general unfolding
        out, state = ops.conv2d_forward(x, W, b, stride, 1, 1)
        ops.conv2d_backward(out, state, W, stride, 1, 1)
    for kind in ("relu", "tanh"):
        out, state = getattr(ops, f"{kind}_forward")(x)
        getattr(ops, f"{kind}_backward")(out, state)
    from numpy_alexnet.layers import AvgPool2D, Conv2D, MaxPool2D, ReLU
    for pool in (MaxPool2D, AvgPool2D):                     # the fused conv -> neuron -> pool steps
        (step,) = ops.fuse([layer.to("numba") for layer in (Conv2D(4, 6, 3, padding=1), ReLU(),
                                                             pool(kernel_size=3, stride=2))])
        out = step.forward(x, train=True)
        step.backward(out)
    return {"import_s": t_import, "first_calls_s": time.perf_counter() - t0}


def cpu_model() -> dict:
    """The CPU as /proc/cpuinfo names it (model name, family, model, stepping) and its SIMD flags."""
    info = {"model_name": platform.processor() or platform.machine()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    first = text.split("\n\n")[0]                        # the first processor's block
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    info.update(model_name=fields.get("model name", info["model_name"]),
                family=fields.get("cpu family"), model=fields.get("model"),
                stepping=fields.get("stepping"),
                simd=[f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
                      if f in fields.get("flags", "").split()])
    return info


def openblas_core() -> str:
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            f = getattr(lib, name, None)
            if f is not None:
                f.restype = ctypes.c_char_p
                return f().decode()
    return "unknown"


# -- the whole run ----------------------------------------------------------------------------
def available_backends(device: str) -> list[str]:
    from numpy_alexnet.backend import cupy_available, numba_available
    if device == "cpu":
        out = ["numpy"] + (["numba"] if numba_available() else [])
        try:
            import torch  # noqa: F401
            out.append("torch")
        except ImportError:
            pass
        return out
    if not cupy_available():
        raise SystemExit("--device gpu: CuPy with a CUDA device is needed")
    out = ["cupy"]
    try:
        import torch
        if torch.cuda.is_available():
            out.append("torch-cuda")
    except ImportError:
        pass
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--nets", default="fig1,alexnet")
    p.add_argument("--backends", default=None, help="comma-separated; default: all available")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds per net")
    p.add_argument("--out", default=None, help="JSON file (default docs/results/bench_<device>.json)")
    p.add_argument("--markdown", action="store_true", help="print the docs/performance.md table")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-compile", action="store_true", help="skip timing numba's first compile")
    p.add_argument("--towers", action="store_true", help="GPU: also the two-tower AlexNet")
    p.add_argument("--floor", action="store_true",
                   help="CPU: also time 'numba-gemms', the Numba step's convolution GEMMs alone")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every library (OpenBLAS, Numba, PyTorch); default: their own")
    p.add_argument("--_child", nargs="*", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads and os.environ.get("BENCH_THREADS") != str(args.threads):
        # Thread counts are read when the libraries load: start again with them set.
        n = str(args.threads)
        env = dict(os.environ, BENCH_THREADS=n, OPENBLAS_NUM_THREADS=n, OMP_NUM_THREADS=n,
                   NUMBA_NUM_THREADS=n, MKL_NUM_THREADS=n)
        os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve())]
                  + (argv if argv is not None else sys.argv[1:]), env)

    if args._child:                                       # internal: a measuring child process
        kind = args._child[0]
        if kind == "memory":
            print(json.dumps(memory_child(args._child[1], args._child[2], int(args._child[3]))))
        elif kind == "numba-compile":
            print(json.dumps(numba_compile_child()))
        return 0

    backends = args.backends.split(",") if args.backends else available_backends(args.device)
    peer = "torch" if args.device == "cpu" else "torch-cuda"
    result = {
        "command": "python benchmarks/bench_train.py " + " ".join(argv if argv is not None
                                                                 else sys.argv[1:]),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu": cpu_model(), "cpus": os.cpu_count(),
                    "loadavg_before": os.getloadavg()},
        "software": {"python": platform.python_version(), "numpy": np.__version__,
                     "openblas_core": openblas_core(),
                     "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
                     "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")},
        "lr": LR, "nets": {},
    }
    try:
        import numba
        result["software"].update(numba=numba.__version__, numba_threads=numba.config.NUMBA_NUM_THREADS)
    except ImportError:
        pass
    try:
        import torch
        result["software"].update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    except ImportError:
        pass

    if "numba" in backends and not args.no_compile:
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            cold = run_child(["--_child", "numba-compile"], env)
            warm = run_child(["--_child", "numba-compile"], env)
        result["numba_first_compile"] = {"cold_cache": cold, "warm_cache": warm}
        print(f"numba: first compile (empty cache) {cold}, from the cache {warm}", flush=True)

    for net_name in args.nets.split(","):
        dev = "cpu" if args.device == "cpu" else "gpu"
        batch = BATCH[(net_name, dev)]
        bks = list(backends)
        if args.towers and net_name == "alexnet" and args.device == "gpu":
            bks.append("cupy-towers(0,0)")
        if args.floor and args.device == "cpu":
            bks.insert(bks.index("numba") + 1 if "numba" in bks else 0, "numba-gemms")
        rounds = args.rounds or (2 if net_name == "alexnet" else 3)
        steps = 1 if net_name == "alexnet" and args.device == "cpu" else 2
        if args.device == "gpu":
            rounds, steps = max(rounds, 5), 5
        print(f"{net_name}, batch {batch}: timing {bks}, {rounds} interleaved rounds x {steps} "
              f"steps", flush=True)
        times = time_interleaved(net_name, bks, batch, rounds, steps)
        rows = {}
        for b in bks:
            med = statistics.median(times[b])
            rows[b] = {"batch": batch, "step_s": times[b], "median_step_s": med,
                       "images_per_s": batch / med}
        if peer in rows:
            for b in bks:
                rows[b]["ratio_vs_torch"] = rows[b]["images_per_s"] / rows[peer]["images_per_s"]
        if "numba" in rows and "numba-gemms" in rows:
            # How far the Numba step is above its own floor: step time / GEMM-only time.
            rows["numba"]["ratio_vs_gemm_floor"] = (rows["numba"]["median_step_s"]
                                                    / rows["numba-gemms"]["median_step_s"])
        if "numba" in rows and "numpy" in rows:
            rows["numpy"]["ratio_vs_numba"] = rows["numpy"]["images_per_s"] / rows["numba"]["images_per_s"]
        if "numba-gemms" in rows:
            flops = GemmFloorRunner(net_name, batch).flops
            rows["numba-gemms"]["gemm_gflop_per_step"] = flops / 1e9
            rows["numba-gemms"]["gemm_gflop_per_s"] = flops / 1e9 / rows["numba-gemms"]["median_step_s"]
            print(f"  numba-gemms: {flops / 1e9:.2f} GFLOP a step, "
                  f"{rows['numba-gemms']['gemm_gflop_per_s']:.0f} GFLOP/s", flush=True)
        if not args.no_memory:
            for b in bks:
                if b == "numba-gemms":
                    continue                              # not a backend: no step to hold memory
                rows[b]["memory"] = run_child(["--_child", "memory", net_name, b, str(batch)])
        for b in bks:
            r = rows[b]
            mem = r.get("memory", {})
            floor = (f"  {r['ratio_vs_gemm_floor']:.2f}x its GEMM floor"
                     if "ratio_vs_gemm_floor" in r else "")
            print(f"  {b:18s} {r['images_per_s']:8.1f} images/s  median step "
                  f"{r['median_step_s'] * 1e3:8.1f} ms  x{r.get('ratio_vs_torch', float('nan')):.2f} "
                  f"of PyTorch  peak {mem.get('gpu_peak_MiB', mem.get('step_peak_MiB', float('nan'))):.0f} MiB"
                  f"{floor}", flush=True)
        result["nets"][net_name] = rows
    result["machine"]["loadavg_after"] = os.getloadavg()

    out = Path(args.out or ROOT / "docs" / "results" / f"bench_{args.device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    if args.markdown:
        print(markdown_table(result))
    return 0


def markdown_table(result: dict) -> str:
    """The results as a table; 'step / GEMM floor' is filled for Numba when --floor ran."""
    cpu, machine = result["machine"].get("cpu", {}), result["machine"]
    load = lambda key: " ".join(f"{v:.1f}" for v in machine.get(key) or ())  # noqa: E731
    lines = [f"CPU: {cpu.get('model_name', 'unknown')} (family {cpu.get('family')}, model "
             f"{cpu.get('model')}; {', '.join(cpu.get('simd', [])) or 'no SIMD flags read'}), "
             f"{machine['cpus']} CPUs; load average {load('loadavg_before')} before, "
             f"{load('loadavg_after')} after", "",
             "| net | batch | backend | images/s | median step (ms) | peak memory (MiB) | vs PyTorch "
             "| step / GEMM floor |",
             "|---|---|---|---|---|---|---|---|"]
    for net_name, rows in result["nets"].items():
        for b, r in rows.items():
            mem = r.get("memory", {})
            peak = mem.get("gpu_peak_MiB", mem.get("step_peak_MiB"))
            floor = f"{r['ratio_vs_gemm_floor']:.2f}x" if "ratio_vs_gemm_floor" in r else ""
            lines.append(f"| {net_name} | {r['batch']} | {b} | {r['images_per_s']:.1f} | "
                         f"{r['median_step_s'] * 1e3:.0f} | "
                         f"{'' if peak is None else f'{peak:.0f}'} | "
                         f"{r.get('ratio_vs_torch', float('nan')):.2f}x | {floor} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
