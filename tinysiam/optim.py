"""Optimizers (SGD with momentum, Adam) and learning-rate schedules.

``params`` is an iterable of parameters, or a list of dicts ("parameter
groups"), each with its own ``params`` and any of the optimizer's settings,
e.g. Koch et al.'s per-layer learning rates::

    SGD([{"params": conv.parameters(), "lr": 1e-2}, {"params": head.parameters()}], lr=1e-3, momentum=0.5)

Updates change each parameter's ``.data`` in place and never modify ``.grad``.
"""
import numpy as np

from .backend import to_numpy, xp_of
from .tensor import no_grad


class Optimizer:
    defaults = {}

    def __init__(self, params, **settings):
        self.defaults = {**type(self).defaults, **settings}
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            group = {**self.defaults, **group, "params": list(group["params"])}
            self._validate(group)
            group["initial_lr"] = group["lr"]
            self.param_groups.append(group)
        self.state = {}  # id(param) -> dict of arrays (momentum buffers, moments)
        self.steps = 0

    def _validate(self, group):
        if group["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {group['lr']}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"{type(self).__name__}: weight_decay must be >= 0, got {group['weight_decay']}")

    def zero_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self):
        self.steps += 1
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        grad = p.grad + group["weight_decay"] * p.data if group["weight_decay"] else p.grad
                        self.update(p, grad, group, self.state.setdefault(id(p), {}))

    def update(self, param, grad, group, state):
        raise NotImplementedError

    # ----- checkpoints: a flat dict of arrays and numbers ------------------------------------
    def _ordered_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        state = {"steps": self.steps}
        for g, group in enumerate(self.param_groups):
            state[f"group{g}.lr"] = group["lr"]
        for i, p in enumerate(self._ordered_params()):
            for key, array in self.state.get(id(p), {}).items():
                state[f"param{i}.{key}"] = to_numpy(array)
        return state

    def load_state_dict(self, state):
        self.steps = int(state["steps"])
        for g, group in enumerate(self.param_groups):
            group["lr"] = float(state[f"group{g}.lr"])
        self.state = {}
        for i, p in enumerate(self._ordered_params()):
            prefix = f"param{i}."
            entries = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            if entries:
                self.state[id(p)] = {k: np.asarray(v).item() if np.ndim(v) == 0 else xp_of(p.data).asarray(v, dtype=p.dtype)
                                     for k, v in entries.items()}


class SGD(Optimizer):
    """v <- momentum * v + grad;  p <- p - lr * v   (nesterov: p <- p - lr * (grad + momentum * v))."""

    defaults = {"momentum": 0.0, "weight_decay": 0.0, "nesterov": False}

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)

    def _validate(self, group):
        super()._validate(group)
        if not 0 <= group["momentum"] < 1:
            raise ValueError(f"SGD: momentum must be in [0, 1), got {group['momentum']}")

    def update(self, p, grad, group, state):
        if group["momentum"]:
            velocity = state.get("velocity")
            velocity = grad.copy() if velocity is None else group["momentum"] * velocity + grad
            state["velocity"] = velocity
            grad = grad + group["momentum"] * velocity if group["nesterov"] else velocity
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected first and second moments."""

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def _validate(self, group):
        super()._validate(group)
        if not all(0 <= b < 1 for b in group["betas"]):
            raise ValueError(f"Adam: betas must be in [0, 1), got {group['betas']}")

    def update(self, p, grad, group, state):
        b1, b2 = group["betas"]
        if "m" not in state:
            state["m"], state["v"], state["t"] = xp_of(grad).zeros_like(grad), xp_of(grad).zeros_like(grad), 0
        state["t"] += 1
        state["m"] = b1 * state["m"] + (1 - b1) * grad
        state["v"] = b2 * state["v"] + (1 - b2) * grad * grad
        m_hat = state["m"] / (1 - b1 ** state["t"])
        v_hat = state["v"] / (1 - b2 ** state["t"])
        p.data -= group["lr"] * m_hat / (xp_of(grad).sqrt(v_hat) + group["eps"])


class StepLR:
    """Multiply every group's initial lr by gamma once per ``step_size`` calls of step()."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.optimizer, self.step_size, self.gamma, self.epoch = optimizer, step_size, gamma, 0

    def factor(self):
        return self.gamma ** (self.epoch // self.step_size)

    def step(self):
        self.epoch += 1
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor()


class ExponentialLR(StepLR):
    """lr = initial_lr * gamma ** epoch (Koch et al. decay each layer's rate by 1% per epoch)."""

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer, step_size=1, gamma=gamma)
