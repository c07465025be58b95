"""One module per layer family; every layer has ``forward`` and ``backward``."""
from .activation import ReLU, Tanh, make_activation
from .base import Layer, LayerInputError, keyword_only
from .conv import Conv2D, col2im, im2col
from .dropout import Dropout
from .linear import Flatten, Linear
from .local import LocallyConnected2D
from .loss import SoftmaxCrossEntropy, log_softmax, softmax
from .normalization import LocalResponseNorm
from .pooling import AvgPool2D, MaxPool2D
from .spatial_norm import SpatialResponseNorm

__all__ = [
    "Layer", "LayerInputError", "keyword_only", "Conv2D", "im2col", "col2im", "ReLU", "Tanh",
    "make_activation",
    "LocalResponseNorm", "MaxPool2D", "AvgPool2D", "Dropout", "Linear", "Flatten",
    "SoftmaxCrossEntropy", "softmax", "log_softmax",
    "LocallyConnected2D", "SpatialResponseNorm",
]
