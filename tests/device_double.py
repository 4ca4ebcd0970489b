"""A stand-in for CuPy that runs on NumPy and counts every transfer of values to the host.

What a host sync is: a GPU runs the kernels Python queues for it in the background, so
a training step is cheap for Python as long as it only queues work. The moment Python
needs a value that lives on the device (``if loss > best``, ``float(loss)``,
``np.asarray(x)``, a boolean mask whose result length depends on the data), it must
wait for the GPU to finish everything queued so far and copy the value back: the GPU
then idles while Python catches up. A step that does this costs a round trip each time.

This module is an array module like ``cupy``: ``ndarray`` is a ``DeviceArray`` (a NumPy
array kept out of reach), and every other name (``exp``, ``zeros``, ``add.at``, ...) is
NumPy's, taking and giving ``DeviceArray``s. Plugged into ``tinysiam.engine.backend``
where CuPy would be, it makes ``device="gpu"`` run on the CPU, while every read of device
values is logged with the line that asked for it:

* implicit transfers, which a training step should never make: ``bool()``, ``float()``,
  ``int()``, ``.item()``, ``.tolist()``, ``np.asarray(x)``, ``repr``/``format``, using a
  device scalar as an index, and results whose shape depends on the values (boolean-mask
  indexing, ``nonzero``, ``unique``);
* explicit transfers, ``asnumpy(x)`` and ``x.get()`` (CuPy's ways of asking for the
  values): allowed, and counted, so a test can bound them.

As in CuPy, mixing a NumPy array into a device operation is a TypeError (copying it to the
device first, ``asarray``, is fine: host to device is not a sync).
"""
import contextlib
import functools
import numbers
import operator
import os
import sys
import types

import numpy as np


class cuda:  # CuPy's names: the backend asks cuda.runtime.getDeviceCount() whether a GPU is there
    class runtime:
        @staticmethod
        def getDeviceCount():
            return 1


class Transfers:
    """The device-to-host reads made while watching: ``(kind, where)`` pairs, ``where`` the caller's file:line."""

    def __init__(self):
        self.implicit, self.explicit = [], []

    def record(self, kind, explicit=False):
        (self.explicit if explicit else self.implicit).append((kind, _caller()))


_watchers = []


@contextlib.contextmanager
def watching():
    """Log every device-to-host read made inside the block: ``with watching() as transfers: ...``."""
    transfers = Transfers()
    _watchers.append(transfers)
    try:
        yield transfers
    finally:
        _watchers.remove(transfers)


def _record(kind, explicit=False):
    for transfers in _watchers:
        transfers.record(kind, explicit)


_NUMPY = os.path.dirname(np.__file__)


def _caller(depth=3):
    """file:line (function) of the code that asked for the values, and of its callers, ``depth`` frames."""
    frame, lines = sys._getframe(1), []
    while frame is not None and len(lines) < depth:
        name = frame.f_code.co_filename
        if name != __file__ and not name.startswith(_NUMPY):
            lines.append(f"{os.path.relpath(name)}:{frame.f_lineno} ({frame.f_code.co_name})")
        frame = frame.f_back
    return " <- ".join(lines)


# ----- moving between arrays on the device and NumPy arrays --------------------------------------------
def _to_device(value):
    """A NumPy result as a DeviceArray (NumPy scalars too: a reduction on the device gives a 0-d array)."""
    if isinstance(value, (np.ndarray, np.generic)):
        return DeviceArray(value)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v) for v in value)
    return value


def _unwrapped(value):
    """The NumPy arrays inside ``value`` (DeviceArrays, possibly nested in tuples, lists and dicts)."""
    if isinstance(value, DeviceArray):
        return value._array
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrapped(v) for v in value)
    if isinstance(value, dict):
        return {k: _unwrapped(v) for k, v in value.items()}
    return value


def _data_dependent(args):
    """Whether indexing with ``args`` gives a result whose size depends on the values (a boolean mask)."""
    parts = args if isinstance(args, tuple) else (args,)
    return any(isinstance(p, DeviceArray) and p.dtype == bool and p.ndim for p in parts)


class DeviceArray:
    """A NumPy array standing for one on the device: operations give DeviceArrays, reading values is logged."""

    def __init__(self, array):
        self._array = np.asarray(array)

    # shape, dtype, strides, ... are known on the host without reading the values
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: self._array.flags)
    T = property(lambda self: DeviceArray(self._array.T))

    def __len__(self):
        return len(self._array)

    def __getattr__(self, name):  # the array's methods (sum, reshape, astype, ...), on the device
        if name.startswith("_"):  # never NumPy's __array_interface__: NumPy would read the values through it
            raise AttributeError(name)
        return _on_device(getattr(self._array, name), name)

    def __getitem__(self, index):
        if _data_dependent(index):
            _record("boolean-mask indexing")
        return _to_device(self._array[_unwrapped(index)])

    def __setitem__(self, index, value):
        self._array[_unwrapped(index)] = _unwrapped(value)

    def __iter__(self):
        return (DeviceArray(row) for row in self._array)

    # ----- the reads: each waits for the device and copies values back --------------------------------
    def get(self):
        """The values as a NumPy array: CuPy's explicit transfer."""
        _record(".get()", explicit=True)
        return self._array.copy()

    def _read(self, kind):
        _record(kind)
        return self._array

    def __bool__(self):
        return bool(self._read("bool()"))

    def __float__(self):
        return float(self._read("float()"))

    def __int__(self):
        return int(self._read("int()"))

    def __index__(self):
        return operator.index(self._read("used as an index"))

    def __complex__(self):
        return complex(self._read("complex()"))

    def item(self):
        return self._read(".item()").item()

    def tolist(self):
        return self._read(".tolist()").tolist()

    def __array__(self, dtype=None, copy=None):
        array = self._read("conversion to NumPy")
        return array if dtype is None else array.astype(dtype)

    def __repr__(self):
        return f"DeviceArray({self._read('repr()')!r})"

    def __format__(self, spec):
        return format(self._read("format()"), spec)

    # ----- NumPy functions called on DeviceArrays (np.exp(x), np.concatenate([x, y])) run on the device --
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _DeviceUfunc(ufunc)._call(method, inputs, kwargs)

    def __array_function__(self, func, classes, args, kwargs):
        return _on_device(func)(*args, **kwargs)


def _operator(ufunc, swapped=False, in_place=False):
    """A Python operator (``a + b``, ``b + a``, ``a += b``) as the device ufunc; other operand types decline."""
    def apply(self, other):
        if not isinstance(other, (DeviceArray, numbers.Number, np.generic)):
            return NotImplemented  # a Tensor: ``array * tensor`` becomes ``tensor.__rmul__(array)``
        operands = (other, self) if swapped else (self, other)
        result = _DeviceUfunc(ufunc)(*operands, **({"out": (self,)} if in_place else {}))
        return self if in_place else result
    return apply


_BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
           "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power, "matmul": np.matmul,
           "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}
for _name, _ufunc in _BINARY.items():
    setattr(DeviceArray, f"__{_name}__", _operator(_ufunc))
    setattr(DeviceArray, f"__r{_name}__", _operator(_ufunc, swapped=True))
    setattr(DeviceArray, f"__i{_name}__", _operator(_ufunc, in_place=True))
for _name, _ufunc in {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
                      "eq": np.equal, "ne": np.not_equal}.items():
    setattr(DeviceArray, f"__{_name}__", _operator(_ufunc))
for _name, _ufunc in {"neg": np.negative, "pos": np.positive, "abs": np.absolute, "invert": np.invert}.items():
    setattr(DeviceArray, f"__{_name}__", lambda self, ufunc=_ufunc: _DeviceUfunc(ufunc)(self))
DeviceArray.__hash__ = None  # as an ndarray: == compares values


# ----- the module's names: NumPy's, on DeviceArrays --------------------------------------------------
ndarray = DeviceArray
_DATA_DEPENDENT = {"nonzero", "flatnonzero", "argwhere", "unique", "extract", "compress"}  # sizes from values


class _DeviceUfunc:
    """A NumPy ufunc on DeviceArrays (``exp(x)``, ``add.at(a, index, b)``, ``multiply(a, b, out=c)``)."""

    def __init__(self, ufunc):
        self.ufunc = ufunc

    def __call__(self, *inputs, **kwargs):
        return self._call("__call__", inputs, kwargs)

    def __getattr__(self, method):  # at, reduce, outer, ...
        return lambda *inputs, **kwargs: self._call(method, inputs, kwargs)

    def _call(self, method, inputs, kwargs):
        operands = inputs[:1] + inputs[2:] if method == "at" else inputs  # at's index may come from the host
        host = [x.shape for x in operands if isinstance(x, np.ndarray) and x.ndim]
        if host:
            raise TypeError(f"{self.ufunc.__name__}: a NumPy array of shape {host[0]} in a device operation; "
                            "move it to the device first (asarray)")
        out = kwargs.get("out")
        result = getattr(self.ufunc, method)(*_unwrapped(inputs), **_unwrapped(kwargs))
        if out is not None:  # written in place: give back the caller's arrays
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return _to_device(result)


def _on_device(value, name=""):
    """NumPy's ``value`` as the device module's: functions take and give DeviceArrays, sub-modules likewise."""
    if isinstance(value, np.ufunc):
        return _DeviceUfunc(value)
    if isinstance(value, types.ModuleType):
        return _Namespace(value)
    if callable(value) and not isinstance(value, type):
        name = name or getattr(value, "__name__", "")

        @functools.wraps(value)
        def on_device(*args, **kwargs):
            if name in _DATA_DEPENDENT:
                _record(f"{name}()")
            return _to_device(value(*_unwrapped(args), **_unwrapped(kwargs)))
        return on_device
    return _to_device(value)  # an array attribute (x.real) stays on the device; constants and types are as they are


class _Namespace:
    """A NumPy sub-module (``lib.stride_tricks``, ``linalg``, ``fft``) with its functions on the device."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return _on_device(getattr(self._module, name), name)


def __getattr__(name):
    if name.startswith("__"):  # the import system's questions (__path__, ...) are about this file, not NumPy
        raise AttributeError(name)
    return _on_device(getattr(np, name), name)


def asnumpy(array):
    """The values as a NumPy array: CuPy's explicit transfer (``backend.to_numpy`` calls it)."""
    if not isinstance(array, DeviceArray):
        return np.asarray(array)
    _record("asnumpy()", explicit=True)
    return array._array.copy()
