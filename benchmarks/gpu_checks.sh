#!/usr/bin/env bash
# The checks a machine with a CUDA GPU runs on the CuPy backend, in one go:
# the GPU tests, the GPU benchmark against PyTorch (TF32 off), a per-layer
# profile, a Figure-1 training epoch on the full data, and the AlexNet recipe
# for a few hundred steps.  Run from the repository root:
#
#     bash benchmarks/gpu_checks.sh OUTDIR [CIFAR10_ARCHIVE]
#
# Everything goes to OUTDIR (a log and the benchmark's JSON).  Each step has
# its own time limit, so one that hangs does not take the others with it.
set -u
OUT=${1:?usage: bash benchmarks/gpu_checks.sh OUTDIR [CIFAR10_ARCHIVE]}
DATA=${2:-../shared/data/cifar10-jpeg.tar.gz}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export NUMPY_ALEXNET_CACHE=${NUMPY_ALEXNET_CACHE:-/tmp/numpy-alexnet-cache}
PY=${PYTHON:-python3}
step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }

{
step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import cupy, numpy, numba, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__,
'numba', numba.__version__, 'torch', torch.__version__, 'cuda', cupy.cuda.runtime.runtimeGetVersion())"

step "GPU tests (CuPy parity, drift, towers)"
timeout 300 $PY -m pytest tests/test_backends.py -q -p no:cacheprovider -k "cupy or gpu or tower" -rs

step "benchmark against PyTorch (float32, TF32 off)"
timeout 300 $PY benchmarks/bench_train.py --device gpu --towers --markdown --out "$OUT/bench_gpu.json"
step "benchmark against PyTorch: the ablation study's conv-local net"
timeout 200 $PY benchmarks/bench_train.py --device gpu --nets conv_local --markdown \
  --out "$OUT/bench_gpu_conv_local.json"

step "per-layer profile, AlexNet batch 128, CuPy"
timeout 120 $PY benchmarks/profile_step.py --net alexnet --backend cupy --batch 128
step "per-layer profile, Figure-1 net batch 128, CuPy"
timeout 120 $PY benchmarks/profile_step.py --net fig1 --backend cupy --batch 128

if [ -f "$DATA" ]; then
  RUNS=$(mktemp -d)            # fresh run folders: train refuses to overwrite an earlier run
  step "Figure-1 net, 2 epochs on the full CIFAR-10, CuPy"
  timeout 300 $PY -m numpy_alexnet train --model cifar_fig1_relu --data "$DATA" --backend cupy \
    --epochs 2 --no-val --batch-size 128 --lr 0.01 --input-scale unit --init fan-in \
    --schedule fixed --out "$RUNS/fig1" --quiet
  step "AlexNet recipe, 300 images rescaled to 256, CuPy"
  timeout 300 $PY -m numpy_alexnet train --model alexnet --data "$DATA" --limit-per-class 30 \
    --batch-size 32 --init kaiming --input-scale unit --no-val --patience 3 --epochs 30 \
    --backend cupy --out "$RUNS/alexnet" --quiet
  step "AlexNet, 10-crop evaluation of the run above, CuPy"
  timeout 120 $PY -m numpy_alexnet eval "$RUNS/alexnet/checkpoints/latest.npz" --crops ten \
    --limit-per-class 30 --batch-size 40 --backend cupy
fi
step "done"
} 2>&1 | tee "$OUT/gpu_checks.log"
