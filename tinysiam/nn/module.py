"""Module and Parameter: the containers that layers and models are built from."""
from collections import OrderedDict

import numpy as np

from ..engine import backend
from ..engine.tensor import Tensor


class Parameter(Tensor):
    """A tensor a module learns: it always requires grad."""

    def __init__(self, data):
        super().__init__(data, requires_grad=True)


class Module:
    """Base class of layers and models, like PyTorch's.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it, so
    ``named_parameters()`` finds every weight of a model by its dotted name
    ("tower.0.weight"). ``register_buffer`` adds arrays that are saved in the
    ``state_dict`` but not learned (BatchNorm's running statistics).
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
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, array):
        """A saved array that is not learned (e.g. BatchNorm's running mean)."""
        self._buffers[name] = None  # the registry holds names; the array is the attribute
        object.__setattr__(self, name, array)

    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *inputs):
        return self.forward(*inputs)

    # ----- traversal ----------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_modules(self):
        """(dotted name, module) pairs, this module first (named ""); a shared module is listed once."""
        seen = set()

        def visit(prefix, module):
            if id(module) in seen:
                return
            seen.add(id(module))
            yield prefix, module
            for name, child in module._modules.items():
                yield from visit(_join(prefix, name), child)

        return visit("", self)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self):
        """(dotted name, Parameter) pairs; a parameter shared by two modules is listed once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield _join(prefix, name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        """(dotted name, array) pairs of every buffer."""
        return ((name, getattr(module, attr)) for name, module, attr in self._buffer_slots())

    def _buffer_slots(self):
        """(dotted name, owning module, attribute name) of every buffer, for code that replaces them."""
        for prefix, module in self.named_modules():
            for attr in module._buffers:
                yield _join(prefix, attr), module, attr

    # ----- modes and gradients --------------------------------------------------------
    def train(self, mode=True):
        """Training mode (Dropout drops, BatchNorm uses batch statistics) for this module and all below it."""
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
        """Move every parameter and buffer to "cpu" or "gpu", in place (gradients are cleared); returns self."""
        backend.check_device(device)
        return self._map_arrays(lambda a: backend.to_device(a, device))

    def astype(self, dtype):
        """Convert every floating parameter and buffer to ``dtype`` (e.g. float64 for gradcheck); returns self."""
        return self._map_arrays(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)

    def _map_arrays(self, fn):
        for p in self.parameters():
            p.data, p.grad = fn(p.data), None
        for _, module, attr in self._buffer_slots():
            object.__setattr__(module, attr, fn(getattr(module, attr)))
        return self

    # ----- saving ----------------------------------------------------------------------
    def state_dict(self):
        """Name -> NumPy copy of every parameter and buffer."""
        state = OrderedDict((name, backend.to_numpy(p.data).copy()) for name, p in self.named_parameters())
        state.update((name, backend.to_numpy(array).copy()) for name, array in self.named_buffers())
        return state

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` into the parameters and buffers (keeping their device and dtype).

        Every problem is reported at once, and nothing is changed unless all
        arrays fit: names missing from ``state`` or unexpected in it (only
        with ``strict``), and shapes that differ. Returns (missing, unexpected).
        """
        targets = {name: (p, None) for name, p in self.named_parameters()}
        targets.update({name: (module, attr) for name, module, attr in self._buffer_slots()})
        missing = [name for name in targets if name not in state]
        unexpected = [name for name in state if name not in targets]
        problems = [f"missing: {missing}"] if strict and missing else []
        problems += [f"unexpected: {unexpected}"] if strict and unexpected else []
        updates = []
        for name, (owner, attr) in targets.items():
            if name not in state:
                continue
            current = owner.data if attr is None else getattr(owner, attr)
            value = np.asarray(backend.to_numpy(state[name]))
            if value.shape != current.shape:
                problems.append(f"{name}: expected shape {current.shape}, got {value.shape}")
            updates.append((owner, attr, backend.xp_of(current).array(value, dtype=current.dtype)))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: names or shapes differ from the model: "
                             + "; ".join(problems))
        for owner, attr, value in updates:
            if attr is None:
                owner.data, owner.grad = value, None
            else:
                object.__setattr__(owner, attr, value)
        return missing, unexpected

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def extra_repr(self):
        """The layer's settings, shown inside the parentheses of its repr."""
        return ""


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name
