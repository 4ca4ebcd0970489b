"""What PyTorch users type that tinysiam spells the NumPy way: each error says what to write instead.

Kept apart from ``tensor.py`` and ``ops.py`` so that those two read as autodiff
only; they take these helpers by name.
"""
import functools

# PyTorch's argument names -> tinysiam's (NumPy's)
NUMPY_NAMES = {"dim": "axis", "keepdim": "keepdims"}

# attributes PyTorch tensors have and tinysiam's do not, and what to write instead
PYTORCH_SPELLINGS = {
    "view": "t.reshape(...)", "permute": "t.transpose(...)", "unsqueeze": "t[:, None] (None adds an axis)",
    "dim": "t.ndim", "float": "t.astype('float32')", "double": "t.astype('float64')", "long": "t.astype('int64')",
    "cpu": "t.to('cpu')", "cuda": "t.to('gpu')", "requires_grad_": "t.requires_grad = True",
    "tolist": "t.numpy().tolist()", "pow": "t ** p", "mm": "a @ b", "matmul": "a @ b",
}


class ElementCount(int):
    """``Tensor.size``: the number of elements, as in NumPy. Called like PyTorch's ``t.size()``, it says what to
    write instead."""

    def __call__(self, *dim):
        raise TypeError("Tensor.size is the number of elements, as in NumPy, not a method: for PyTorch's "
                        "t.size() write t.shape, for t.size(d) write t.shape[d]")


def numpy_names(fn):
    """``fn``, answering PyTorch's ``dim=`` and ``keepdim=`` with the names to write instead."""
    @functools.wraps(fn)
    def checked(*args, **kwargs):
        pytorch = [name for name in kwargs if name in NUMPY_NAMES]
        if pytorch:
            instead = " and ".join(f"{NUMPY_NAMES[name]}= instead of {name}=" for name in pytorch)
            raise TypeError(f"{fn.__name__}() takes NumPy's argument names: write {instead}")
        return fn(*args, **kwargs)
    return checked


def no_attribute(tensor, name):
    """``Tensor.__getattr__``: Python calls it only for a name Tensor does not have."""
    hint = f"; tinysiam spells it the NumPy way: {PYTORCH_SPELLINGS[name]}" if name in PYTORCH_SPELLINGS else ""
    raise AttributeError(f"'Tensor' object has no attribute {name!r}{hint}")


def transpose_problem(axes, shape):
    """Why ``transpose(*axes)`` is not a permutation of all axes of ``shape``, naming PyTorch's two-axis swap."""
    message = f"transpose{tuple(axes)}: give a permutation of all {len(shape)} axes of shape {shape}, as in NumPy"
    if len(axes) == 2:  # PyTorch's transpose(a, b) swaps two axes
        swapped = list(range(len(shape)))
        swapped[axes[0]], swapped[axes[1]] = swapped[axes[1]], swapped[axes[0]]
        message += f"; to swap axes {axes[0]} and {axes[1]} as PyTorch does, write transpose{tuple(swapped)}"
    return message
