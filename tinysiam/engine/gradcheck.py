"""Gradient checking: compare hand-written backward passes with finite differences.

Use it on your own functions::

    from tinysiam.engine.gradcheck import gradcheck
    gradcheck(lambda x, w: (x @ w).tanh(), x_array, w_array)

``fn`` takes tensors and returns a tensor of any shape. Its output is reduced to
the scalar ``L = sum(fn(*inputs) * v)`` with a fixed random ``v``, so every
output element takes part. For each input the analytic gradient dL/dx (from
``backward``) is compared with central differences in float64:

* elementwise mode (small inputs): ``(L(x + eps e_i) - L(x - eps e_i)) / 2eps``
  for every element ``i``;
* direction mode (large inputs): for a few random unit directions ``u``,
  ``<u, dL/dx>`` against ``(L(x + eps u) - L(x - eps u)) / 2eps``.

An analytic value ``a`` matches a numeric value ``n`` when
``|a - n| <= atol + rtol |n|``; the reported relative error is
``|a - n| / (atol / rtol + |n|)``, which stays meaningful near zero and is
``<= rtol`` exactly when the check passes.

Three extra checks run by default: a second backward pass gives the same
gradients, the inputs are not modified, and a zero upstream gradient gives
zero gradients.
"""
from dataclasses import dataclass, field

import numpy as np

from .backend import to_numpy, xp_of
from .tensor import Tensor, no_grad

ELEMENTWISE_LIMIT = 256  # inputs up to this many elements are checked element by element


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when a gradient does not match; carries the result."""

    def __init__(self, result):
        super().__init__(result.report())
        self.result = result


@dataclass
class InputCheck:
    """How one input fared: its worst element (or direction) and the two values there."""

    index: int
    shape: tuple
    mode: str
    max_rel_error: float = 0.0
    worst: object = None  # element index (elementwise) or direction number
    analytic: float = 0.0
    numeric: float = 0.0
    passed: bool = True


@dataclass
class GradcheckResult:
    passed: bool
    inputs: list = field(default_factory=list)
    problems: list = field(default_factory=list)  # failed extra checks, in words

    @property
    def max_rel_error(self):
        return max((c.max_rel_error for c in self.inputs), default=0.0)

    def report(self):
        lines = [f"gradcheck {'passed' if self.passed else 'FAILED'} (max relative error {self.max_rel_error:.2e})"]
        for c in self.inputs:
            where = f"element {c.worst}" if c.mode == "elementwise" else f"direction {c.worst}"
            status = "ok" if c.passed else "MISMATCH"
            lines.append(f"  input {c.index} shape {c.shape} [{c.mode}] {status}: worst at {where}: "
                         f"analytic {c.analytic:.10g} vs numeric {c.numeric:.10g} (rel err {c.max_rel_error:.2e})")
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-4, mode="auto", n_directions=6, seed=0,
              extra_checks=True, raise_on_failure=True):
    """Check ``fn``'s gradients against finite differences; see the module docstring.

    ``inputs`` are arrays or tensors. Floating inputs are copied to float64 and
    checked (a Tensor with ``requires_grad=False`` is held constant); integer
    inputs (labels, indices) are passed through unchanged. ``mode`` is
    "elementwise", "direction" or "auto" (elementwise up to 256 elements).
    Returns a ``GradcheckResult``; raises ``GradcheckError`` on failure unless
    ``raise_on_failure=False``.
    """
    if mode not in ("auto", "elementwise", "direction"):
        raise ValueError(f"mode must be 'auto', 'elementwise' or 'direction', got {mode!r}")
    if eps <= 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if rtol <= 0 or atol < 0:
        raise ValueError(f"need rtol > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
    if n_directions < 1:
        raise ValueError(f"n_directions must be at least 1, got {n_directions}")
    arrays, checked = _prepare(inputs)
    if not checked:
        raise ValueError("gradcheck: no floating-point input to check (pass arrays or tensors with requires_grad=True)")
    originals = [a.copy() for a in arrays]
    rng = np.random.default_rng(seed)
    xp = xp_of(arrays[0])

    def run(upstream=None):
        """Forward and backward once; returns the output array and the gradients."""
        tensors = [Tensor(a, requires_grad=i in checked) for i, a in enumerate(arrays)]
        out = fn(*tensors)
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        if upstream is not None:
            if not out.requires_grad:
                raise ValueError("gradcheck: the output does not depend on any checked input")
            out.backward(upstream)
        return out.data, [tensors[i].grad for i in checked]

    out, _ = run()
    if out.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned dtype {out.dtype} for float64 inputs (a silent downcast?)")
    v = xp.asarray(rng.standard_normal(out.shape))

    def objective():
        with no_grad():
            return float((fn(*[Tensor(a) for a in arrays]).data * v).sum())

    _, grads = run(v)
    result = GradcheckResult(passed=True)
    for i, grad in zip(checked, grads):
        if grad is None:  # no gradient reached this input: the claim is zero, the numbers below judge it
            grad = xp.zeros_like(arrays[i])
        if grad.shape != arrays[i].shape:
            result.problems.append(f"input {i}: gradient has shape {grad.shape}, expected {arrays[i].shape}")
            continue
        use_elementwise = mode == "elementwise" or (mode == "auto" and arrays[i].size <= ELEMENTWISE_LIMIT)
        check = (_elementwise if use_elementwise else _directions)(
            objective, arrays[i], to_numpy(grad), eps, atol, rtol, rng, n_directions)
        check.index = i
        result.inputs.append(check)

    if extra_checks:
        _, again = run(v)
        for i, g1, g2 in zip(checked, grads, again):
            if g1 is not None and not np.allclose(to_numpy(g1), to_numpy(g2), rtol=1e-12, atol=1e-14):
                result.problems.append(f"input {i}: a second backward pass gave different gradients")
        _, zero_grads = run(xp.zeros_like(v))
        for i, g in zip(checked, zero_grads):
            if g is not None and bool((g != 0).any()):
                result.problems.append(f"input {i}: a zero upstream gradient gave a non-zero gradient")
        for i, (a, original) in enumerate(zip(arrays, originals)):
            if not bool((a == original).all()):
                result.problems.append(f"input {i}: fn modified its input in place")

    result.passed = not result.problems and all(c.passed for c in result.inputs)
    if raise_on_failure and not result.passed:
        raise GradcheckError(result)
    return result


def _prepare(inputs):
    """float64 copies of the inputs, and the positions of those to check."""
    arrays, checked = [], []
    for i, x in enumerate(inputs):
        data = x.data if isinstance(x, Tensor) else x
        data = xp_of(data).asarray(data)
        if data.dtype.kind == "f":
            data = data.astype(np.float64)  # always a copy: the caller's array is never touched
            if not isinstance(x, Tensor) or x.requires_grad:
                checked.append(i)
        arrays.append(data)
    return arrays, checked


def _compare(analytic, numeric, atol, rtol):
    """Relative errors |a - n| / (atol/rtol + |n|), elementwise."""
    return np.abs(analytic - numeric) / (atol / rtol + np.abs(numeric))


def _elementwise(objective, x, grad, eps, atol, rtol, rng, n_directions):
    numeric = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        saved = x[i].item()
        x[i] = saved + eps
        plus = objective()
        x[i] = saved - eps
        minus = objective()
        x[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    errors = _compare(grad, numeric, atol, rtol)
    worst = np.unravel_index(np.argmax(errors), x.shape) if x.size else ()
    check = InputCheck(0, x.shape, "elementwise")
    if x.size:
        check.max_rel_error, check.worst = float(errors[worst]), tuple(int(w) for w in worst)
        check.analytic, check.numeric = float(grad[worst]), float(numeric[worst])
    check.passed = bool((errors <= rtol).all())
    return check


def _directions(objective, x, grad, eps, atol, rtol, rng, n_directions):
    xp = xp_of(x)
    saved = x.copy()
    check = InputCheck(0, x.shape, "direction")
    for k in range(n_directions):
        u = rng.standard_normal(x.shape)
        u /= np.linalg.norm(u)
        u_dev = xp.asarray(u)
        x[...] = saved + eps * u_dev
        plus = objective()
        x[...] = saved - eps * u_dev
        minus = objective()
        x[...] = saved
        numeric = (plus - minus) / (2 * eps)
        analytic = float((grad * u).sum())
        error = float(_compare(analytic, numeric, atol, rtol))
        if k == 0 or error > check.max_rel_error:
            check.max_rel_error, check.worst, check.analytic, check.numeric = error, k, analytic, numeric
    check.passed = check.max_rel_error <= rtol
    return check
