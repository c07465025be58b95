import shutil

import numpy as np
import pytest
from test_cli_errors import make_folder, snapshot, train_args

from numpy_alexnet.cli import main


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# -- a small image folder and one trained run, shared by the CLI test modules -------------
# (test_cli_errors and test_training_floor); the helpers live in test_cli_errors.
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("data") / "pets")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data):
    """A one-epoch run (2 steps) on ``data``: the folder it was written to."""
    out = tmp_path_factory.mktemp("trained") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUMPY_ALEXNET_CACHE", str(out.parent / "cache"))
        assert main(train_args(data, out)) == 0
    return out


@pytest.fixture
def run_dir(trained, tmp_path):
    """A fresh copy of the trained run, and its files' bytes."""
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    return out, snapshot(out)

