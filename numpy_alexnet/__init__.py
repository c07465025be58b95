"""numpy-alexnet: AlexNet (Krizhevsky, Sutskever and Hinton, NIPS 2012) in readable NumPy.

Importing the package needs only NumPy; the Numba and CuPy backends load when
asked for (``net.to('numba')``, ``net.to('cupy', device=0)``).
"""
from .backend import BACKENDS, get_array_module, to_numpy
from .layers import (AvgPool2D, Conv2D, Dropout, Flatten, Layer, LayerInputError, Linear,
                     LocalResponseNorm, MaxPool2D, ReLU, SoftmaxCrossEntropy, Tanh)
from .layers import LocallyConnected2D, SpatialResponseNorm
from .models import alexnet, alexnet_torchvision, build, build_model, cifar_fig1
from .net import KeyMismatchError, Sequential
from .optim import MomentumSGD
from . import fast  # noqa: E402,F401  (declares the fast backends; imports neither Numba nor CuPy)

__version__ = "0.1.0"

__all__ = [
    "BACKENDS", "get_array_module", "to_numpy", "Layer", "LayerInputError", "KeyMismatchError",
    "Conv2D", "ReLU",
    "Tanh", "LocalResponseNorm", "MaxPool2D", "AvgPool2D", "Dropout", "Linear", "Flatten",
    "SoftmaxCrossEntropy", "Sequential", "MomentumSGD", "alexnet", "alexnet_torchvision",
    "cifar_fig1", "build",
    "build_model", "__version__",
    "LocallyConnected2D", "SpatialResponseNorm",
]
