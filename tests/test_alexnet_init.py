"""AlexNet's starting weights: the paper's (default) and the two named deviations.

Spec-level checks (no 60-million-parameter build), plus the command line's
refusal of ``--init kaiming`` on raw 0-255 inputs.
"""
import numpy as np
import pytest

from numpy_alexnet.cli import main
from numpy_alexnet.models import ALEXNET_INITS, alexnet_spec

LEARNED = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")


def _starts(init):
    return {name: (args["weight_std"], args["bias"]) for name, kind, args in alexnet_spec(10, init)
            if kind in ("conv", "linear")}


def test_paper_init_is_section_5_and_the_default():
    starts = _starts("paper")
    assert {name: std for name, (std, _) in starts.items()} == dict.fromkeys(LEARNED, 0.01)
    ones = {name for name, (_, b) in starts.items() if b == 1.0}
    assert ones == {"conv2", "conv4", "conv5", "fc6", "fc7"}
    assert all(b == 0.0 for name, (_, b) in starts.items() if name not in ones)
    default = {name: (a.get("weight_std", 0.01), a.get("bias", 0.0))
               for name, kind, a in alexnet_spec(10) if kind in ("conv", "linear")}
    assert default == starts


def test_caffe_init_is_bvlc_alexnet():
    starts = _starts("caffe")
    assert starts["fc6"] == starts["fc7"] == (0.005, 0.1)
    assert starts["conv2"] == starts["conv4"] == starts["conv5"] == (0.01, 0.1)
    assert starts["conv1"] == starts["conv3"] == starts["fc8"] == (0.01, 0.0)


def test_kaiming_init_is_two_over_fan_in():
    fan_in = {"conv1": 3 * 11 * 11, "conv2": 48 * 5 * 5, "conv3": 256 * 3 * 3,
              "conv4": 192 * 3 * 3, "conv5": 192 * 3 * 3, "fc6": 9216, "fc7": 4096, "fc8": 4096}
    starts = _starts("kaiming")
    for name in LEARNED:
        assert starts[name] == (pytest.approx(np.sqrt(2.0 / fan_in[name])), 0.0), name


def test_unknown_init_refused():
    with pytest.raises(ValueError, match="unknown AlexNet init"):
        alexnet_spec(10, "xavier")
    assert set(ALEXNET_INITS) == {"paper", "caffe", "kaiming"}


def test_cli_kaiming_needs_unit_inputs(tmp_path, capsys):
    code = main(["train", "--model", "alexnet", "--data", str(tmp_path / "none"), "--init",
                 "kaiming", "--out", str(tmp_path / "run"), "--quiet"])
    assert code == 2                                   # bad arguments (docs/cli.md)
    assert "--input-scale unit" in capsys.readouterr().err

