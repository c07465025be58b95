"""Solutions to the exercises of notebook 03_alexnet_tour. Try them first."""


def side_after(H, layers):
    """Sides after each (kernel, stride, pad) in turn, from an input of side H."""
    sides = []
    for K, stride, pad in layers:
        H = (H + 2 * pad - K) // stride + 1          # floor, in integers
        sides.append(H)
    return sides


def conv_params(F, C, K, groups):
    """Weights plus biases of a KxK convolution, C -> F channels, in `groups` groups."""
    return F * (C // groups) * K * K + F             # each kernel sees C/groups channels
