"""Module and Parameter: the containers that layers and models are built from."""
from collections import OrderedDict

import numpy as np

from .. import backend
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor a module learns: it always requires grad."""

    def __init__(self, data, name=None):
        super().__init__(data, requires_grad=True, name=name)


class Module:
    """Base class of layers and models, like PyTorch's.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so
    ``named_parameters()`` finds every weight of a model by its dotted name.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._buffers:  # a buffer stays a buffer when updated
            object.__setattr__(self, name, value)
            return
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, array):
        """A saved array that is not learned (e.g. BatchNorm's running mean)."""
        self._buffers[name] = None
        object.__setattr__(self, name, array)

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *inputs):
        return self.forward(*inputs)

    # ----- traversal ----------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}{name}.")

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self):
        """(dotted name, Parameter) pairs; a parameter shared by two children is listed once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield prefix + name, p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name in module._buffers:
                yield prefix + name, module, name

    # ----- modes and gradients --------------------------------------------------------
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # ----- moving and converting --------------------------------------------------------
    def to(self, device):
        """Move every parameter and buffer to "cpu" or "gpu", in place; returns self."""
        backend.check_device(device)
        return self._map_arrays(lambda a: backend.to_device(a, device))

    def astype(self, dtype):
        """Convert every parameter and floating buffer to ``dtype`` (e.g. float64 for gradcheck)."""
        return self._map_arrays(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def _map_arrays(self, fn):
        for p in self.parameters():
            p.data, p.grad = fn(p.data), None
        for _, module, name in self.named_buffers():
            object.__setattr__(module, name, fn(getattr(module, name)))
        return self

    # ----- saving ----------------------------------------------------------------------
    def state_dict(self):
        """Name -> NumPy copy of every parameter and buffer."""
        state = OrderedDict((name, backend.to_numpy(p.data).copy()) for name, p in self.named_parameters())
        for name, module, attr in self.named_buffers():
            state[name] = backend.to_numpy(getattr(module, attr)).copy()
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into the parameters and buffers (same device as now)."""
        targets = {name: (p, None) for name, p in self.named_parameters()}
        targets.update({name: (module, attr) for name, module, attr in self.named_buffers()})
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing {missing}, unexpected {unexpected}")
        for name in sorted(set(targets) & set(state)):
            owner, attr = targets[name]
            current = owner.data if attr is None else getattr(owner, attr)
            value = np.asarray(state[name])
            if value.shape != current.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: {name} has shape {value.shape} "
                                 f"in the checkpoint but {current.shape} in the model")
            value = backend.xp_of(current).asarray(value, dtype=current.dtype)
            if attr is None:
                owner.data, owner.grad = value, None
            else:
                object.__setattr__(owner, attr, value)

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""
