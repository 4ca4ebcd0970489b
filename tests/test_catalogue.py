"""The gradient-check catalogue: complete, and all green."""
import inspect

import numpy as np

from tinysiam import conv, distances, losses, nn, ops
from tinysiam.catalogue import Check, all_checks, main, run_checks
from tinysiam.tensor import Function


def function_classes(module):
    return {name for name, obj in vars(module).items()
            if inspect.isclass(obj) and issubclass(obj, Function) and obj.__module__ == module.__name__}


def test_whole_catalogue_passes():
    rows = run_checks(all_checks())
    failed = [r["name"] + ": " + r["message"] for r in rows if not r["passed"]]
    assert not failed, "\n".join(failed)


def test_every_op_and_layer_has_an_entry():
    names = " ".join(c.name.lower() for c in all_checks())
    op_names = {"add", "sub", "mul", "div", "neg", "pow", "matmul", "sum", "mean", "max", "reshape", "transpose",
                "getitem", "concatenate", "stack", "astype", "exp", "log", "sqrt", "abs", "relu", "sigmoid", "tanh",
                "clip", "maximum", "conv2d", "max_pool2d"}
    assert function_classes(ops) == {"Add", "Sub", "Mul", "Div", "Neg", "Pow", "MatMul", "Sum", "Mean", "Max",
                                     "Reshape", "Transpose", "GetItem", "Concatenate", "Stack", "AsType", "Exp",
                                     "Log", "Sqrt", "Abs", "ReLU", "Sigmoid", "Tanh", "Clip"}, \
        "a new op needs a catalogue entry (and this list)"
    layers = {"linear", "conv2d(", "maxpool2d", "flatten", "relu", "sigmoid", "tanh", "dropout", "batchnorm1d",
              "batchnorm2d", "sequential"}
    siamese = {"l1_distance", "l2_distance", "squared_l2_distance", "cosine_distance", "contrastive_loss",
               "contrastive_linear_loss", "chopra_energy_loss", "triplet_loss", "bce_with_logits", "mse_loss",
               "nt_xent_loss", "kochhead", "relationmodule", "twinnetwork", "tripletnetwork"}
    missing = {n for n in op_names | layers | siamese if n not in names}
    assert not missing
    assert function_classes(conv) == {"Conv2dOp", "MaxPool2dOp"}
    assert len(function_classes(losses)) == 8 and len(function_classes(distances)) == 4
    assert "BatchNormOp" in dir(nn)


def test_main_fails_when_a_check_fails(monkeypatch, capsys):
    import tinysiam.catalogue as catalogue

    wrong = Check("deliberately wrong", "op", lambda x: WrongGrad()(x), [np.ones(3)])
    monkeypatch.setattr(catalogue, "all_checks", lambda seed, groups: [wrong])
    assert main([]) == 1
    assert "1 failed" in capsys.readouterr().out


class WrongGrad(Function):
    def forward(self, x):
        return x * 0

    def backward(self, g):
        return g  # claims slope 1 where the slope is 0
