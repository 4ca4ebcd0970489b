"""Layers and modules, PyTorch-style: ``tinysiam.nn.Linear(4, 2)``."""
from . import init
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNormOp
from .layers import (
                     AvgPool1d,
                     Conv1d,
                     Conv2d,
                     Dropout,
                     Embedding,
                     Flatten,
                     Linear,
                     MaskedMaxPool1d,
                     MaskedMeanPool1d,
                     MaxPool1d,
                     MaxPool2d,
                     ReLU,
                     Sequential,
                     Sigmoid,
                     Tanh,
)
from .module import Module, Parameter
from .normalize import L2Normalize, Standardize

__all__ = ["init", "AvgPool1d", "BatchNorm1d", "BatchNorm2d", "BatchNormOp", "Conv1d", "Conv2d", "Dropout", "Flatten",
           "Linear", "MaxPool1d", "MaxPool2d", "ReLU", "Sequential", "Sigmoid", "Tanh", "Module", "Parameter"]
__all__ += ["L2Normalize", "Standardize", "Embedding", "MaskedMaxPool1d", "MaskedMeanPool1d"]
