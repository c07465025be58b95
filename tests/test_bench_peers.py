"""The PyTorch peers of benchmarks/bench_train.py are the same networks: as many
parameters, the same output shape (PyTorch is optional: skipped without it)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from numpy_alexnet import build_model

torch = pytest.importorskip("torch", reason="PyTorch is an optional peer")
BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_train.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_train", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("net_name", ["fig1", "alexnet", "conv_local"])
def test_the_pytorch_peer_is_the_same_network(bench, net_name):
    spec = bench.NETS[net_name]
    ours = build_model(spec["model"], seed=0)
    peer = bench.torch_net(net_name).eval()
    assert sum(p.numel() for p in peer.parameters()) == ours.num_params()
    x = np.zeros((2,) + spec["shape"], np.float32)
    with torch.no_grad():
        assert tuple(peer(torch.from_numpy(x)).shape) == ours.forward(x).shape == (2, spec["classes"])
