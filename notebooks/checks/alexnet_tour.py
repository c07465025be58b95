"""Checks of notebook 3's exercises: the side of every feature map and the
parameters of a grouped convolution, counted with integers."""
from __future__ import annotations

from numpy_alexnet.layers import Conv2D
from numpy_alexnet.models import alexnet_spec

from . import fail

ALEXNET_WINDOWS = [(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1), (3, 2, 0)]
CIFAR_WINDOWS = [(5, 1, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0), (5, 1, 2), (3, 2, 0)]


def _sides(side_after, H, layers, what):
    got = side_after(H, layers)
    if isinstance(got, (int, float)):
        fail(f"{what}: side_after returned one number, {got}: return a list, the side after each layer")
    got = list(got)
    if any(isinstance(s, float) for s in got):
        fail(f"{what}: {got} holds floats: use // (integer division); / gives a float even where "
             "it divides exactly")
    return got


def test_side_after(side_after):
    want = [55, 27, 27, 13, 13, 13, 13, 6]
    got = _sides(side_after, 227, ALEXNET_WINDOWS, "from 227")
    if got != want:
        hint = ("the padding: H + 2*pad - K" if got[:2] == want[:2] and got[2] != want[2] else
                "a side is (H + 2*pad - K) // stride + 1")
        fail(f"from 227: {got}, expected {want}; {hint}")
    got = _sides(side_after, 224, ALEXNET_WINDOWS, "from 224")
    if got[0] == 55:
        fail("from 224 without padding conv1 gives 54 ((224 - 11) / 4 = 53.25, rounded down, + 1): "
             "the floor, as this library, Caffe and PyTorch count (ceil is exercise 6.2)")
    if (got[0], got[-1]) != (54, 5):
        fail(f"from 224 without padding: {got}, expected 54 ... 5")
    got = _sides(side_after, 32, CIFAR_WINDOWS, "the CIFAR net from 32")
    if got != [32, 15, 15, 7, 7, 3]:
        fail(f"the CIFAR net from 32: {got}, expected [32, 15, 15, 7, 7, 3]")
    huge = 2 ** 60 + 5                                 # float64 cannot hold (huge - 3) / 2 exactly
    got = _sides(side_after, huge, [(3, 2, 0)], "from 2**60 + 5")
    if got != [(huge - 3) // 2 + 1]:
        fail(f"from 2**60 + 5 through a 3x3 window at stride 2: {got}, expected {[(huge - 3) // 2 + 1]}: "
             "float division rounds a number this large; integer arithmetic (//) does not")


def test_conv_params(conv_params):
    for name, kind, args in alexnet_spec():
        if kind != "conv":
            continue
        F, C, K, G = args["out_channels"], args["in_channels"], args["kernel_size"], args.get("groups", 1)
        want = Conv2D(C, F, K, groups=G).num_params()
        got = conv_params(F, C, K, G)
        if isinstance(got, float):
            fail(f"{name}: conv_params returned the float {got}: count in integers (// where you divide)")
        if got != want:
            hints = {F * C * K * K + F: "each kernel sees only the C/groups channels of its group",
                     F * (C // G) * K * K: "each of the F kernels has a bias too",
                     (F // G) * (C // G) * K * K + F // G: "all F kernels count, in every group"}
            fail(f"{name} ({F} kernels of {K}x{K} over {C} channels, groups={G}): {got}, the library "
                 f"counts {want:,}" + (f"; hint: {hints[got]}" if got in hints else ""))
    if conv_params(10, 4, 3, 2) != 10 * 2 * 9 + 10:
        fail(f"10 kernels of 3x3 over 4 channels in 2 groups: {conv_params(10, 4, 3, 2)}, expected 190")
