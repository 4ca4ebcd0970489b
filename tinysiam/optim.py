"""Optimizers (SGD with momentum, Adam), learning-rate schedules, a momentum ramp and per-layer groups.

``params`` is an iterable of parameters, or a list of dicts ("parameter
groups"), each with its own ``params`` and any of the optimizer's settings,
e.g. Koch et al.'s per-layer learning rates::

    SGD([{"params": conv.parameters(), "lr": 1e-2}, {"params": head.parameters()}], lr=1e-3, momentum=0.5)

``layer_groups(model, settings)`` builds one such group per layer of a model.

``step()`` changes each parameter's ``.data`` in place. It never modifies a
``.grad`` array (one may be a view shared with other tensors); the
optimizer's own buffers (velocity, moments) are private arrays, updated in place.
"""
import math

from .engine.backend import to_numpy, xp_of
from .engine.checks import check_integer, check_number, number_problem
from .engine.tensor import Tensor, no_grad


class Optimizer:
    """Base class: parameter groups, validation, ``zero_grad``, ``step`` and checkpoint state."""

    defaults = {}  # the settings a group may override, with their default values

    def __init__(self, params, **settings):
        name = type(self).__name__
        self.defaults = {**type(self).defaults, **settings}
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        if all(isinstance(p, dict) for p in params):
            groups = params
        elif any(isinstance(p, dict) for p in params):
            raise TypeError(f"{name}: params must be all parameters or all dicts (parameter groups), not a mix")
        else:
            groups = [{"params": params}]
        self.param_groups = []
        seen = set()
        for i, group in enumerate(groups):
            unknown = sorted(set(group) - set(self.defaults) - {"params"})
            if "params" not in group or unknown:
                raise ValueError(f"{name}: parameter group {i} needs a 'params' entry and may set only "
                                 f"{sorted(self.defaults)}; got keys {sorted(group)}")
            group = {**self.defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, Tensor) or not p.requires_grad:
                    raise TypeError(f"{name}: parameter group {i} holds {type(p).__name__} {getattr(p, 'shape', '')}; "
                                    "expected tensors with requires_grad=True (e.g. model.parameters())")
                if id(p) in seen:
                    raise ValueError(f"{name}: a parameter of shape {p.shape} appears twice (group {i})")
                seen.add(id(p))
            self._validate(group)
            group["initial_lr"] = group["lr"]  # schedules scale from here
            self.param_groups.append(group)
        self.state = {}  # id(param) -> {name: array or number} (velocity, moments)
        self.steps = 0

    def _validate(self, group):
        """Raise ValueError naming the first bad setting of ``group``."""
        name = type(self).__name__
        for key in ("lr", "weight_decay"):
            check_number(f"{name}: {key}", group[key], low=0)

    def zero_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self):
        """One update of every parameter that has a gradient (those with ``grad`` None are skipped)."""
        self.steps += 1
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    # L2 weight decay adds wd * p to the gradient (a new array: p.grad stays as it is)
                    grad = p.grad + group["weight_decay"] * p.data if group["weight_decay"] else p.grad
                    self.update(p, grad, group, self.state.setdefault(id(p), {}))

    def update(self, param, grad, group, state):
        """Change ``param.data`` in place; ``grad`` must not be modified; ``state`` is this parameter's."""
        raise NotImplementedError

    # ----- checkpoints: a flat dict of arrays and numbers ------------------------------------
    def _ordered_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """{"steps", "group<g>.lr", "param<i>.<buffer>"}: NumPy copies and numbers, for ``save_checkpoint``."""
        state = {"steps": self.steps}
        for g, group in enumerate(self.param_groups):
            state[f"group{g}.lr"] = group["lr"]
        for i, p in enumerate(self._ordered_params()):
            for key, value in self.state.get(id(p), {}).items():
                state[f"param{i}.{key}"] = to_numpy(value).copy() if hasattr(value, "shape") else value
        return state

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned; the groups and parameter shapes must be the same."""
        name = type(self).__name__
        params = self._ordered_params()
        expected = {"steps"} | {f"group{g}.lr" for g in range(len(self.param_groups))}
        missing = sorted(expected - set(state))
        if missing:
            raise ValueError(f"{name}.load_state_dict: the state lacks {missing}")
        new_state = {}
        for key, value in state.items():
            if key in expected:
                continue
            index, _, buffer = key.partition(".")
            i = int(index[len("param"):]) if index.startswith("param") and index[len("param"):].isdigit() else -1
            if not 0 <= i < len(params) or not buffer:
                raise ValueError(f"{name}.load_state_dict: unexpected entry {key!r} "
                                 f"(this optimizer has {len(params)} parameters in {len(self.param_groups)} groups)")
            p = params[i]
            if getattr(value, "ndim", 0) == 0:  # a number, such as Adam's step count
                value = value.item() if hasattr(value, "item") else value
            elif value.shape != p.shape:
                raise ValueError(f"{name}.load_state_dict: {key} has shape {value.shape}, "
                                 f"but parameter {i} has shape {p.shape}")
            else:
                value = xp_of(p.data).array(value, dtype=p.dtype)  # a private copy on the parameter's device
            new_state.setdefault(id(p), {})[buffer] = value
        self.steps = int(state["steps"])
        for g, group in enumerate(self.param_groups):
            group["lr"] = float(state[f"group{g}.lr"])
        self.state = new_state


class SGD(Optimizer):
    """v <- momentum * v + grad;  p <- p - lr * v   (nesterov: p <- p - lr * (grad + momentum * v)).

    The first step sets v = grad, as PyTorch does.
    """

    defaults = {"momentum": 0.0, "weight_decay": 0.0, "nesterov": False}

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)

    def _validate(self, group):
        super()._validate(group)
        check_number("SGD: momentum", group["momentum"], low=0, high=1)
        if group["nesterov"] and not group["momentum"]:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")

    def update(self, p, grad, group, state):
        momentum = group["momentum"]
        if momentum:
            if "velocity" not in state:
                state["velocity"] = grad.copy()
            else:
                state["velocity"] *= momentum
                state["velocity"] += grad
            grad = grad + momentum * state["velocity"] if group["nesterov"] else state["velocity"]
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias-corrected moments; weight_decay is added to the gradient (L2).

    m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
    p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _validate(self, group):
        super()._validate(group)
        betas = tuple(group["betas"]) if isinstance(group["betas"], (tuple, list)) else ()
        if len(betas) != 2 or any(number_problem(b, low=0, high=1) for b in betas):
            raise ValueError(f"Adam: betas must be a pair of numbers in [0, 1), got {group['betas']!r}")
        check_number("Adam: eps", group["eps"], low=0)
        group["betas"] = betas

    def update(self, p, grad, group, state):
        b1, b2 = group["betas"]
        xp = xp_of(grad)
        if "m" not in state:
            state["m"], state["v"], state["t"] = xp.zeros_like(grad), xp.zeros_like(grad), 0
        state["t"] += 1
        m, v, t = state["m"], state["v"], state["t"]
        # the moments in place, then the step in one scratch array: no other temporary of the parameter's size
        scratch = grad * grad
        scratch *= 1 - b2
        v *= b2
        v += scratch
        xp.multiply(grad, 1 - b1, out=scratch)
        m *= b1
        m += scratch
        # lr * m_hat / (sqrt(v_hat) + eps), the bias corrections as scalars: m_hat = m / (1 - b1^t), v_hat likewise
        xp.sqrt(v, out=scratch)
        scratch /= math.sqrt(1 - b2**t)
        scratch += group["eps"]
        xp.divide(m, scratch, out=scratch)
        scratch *= group["lr"] / (1 - b1**t)
        p.data -= scratch


class Schedule:
    """Sets a setting of every parameter group from t, the number of ``step()`` calls so far.

    The setting depends on t alone, so ``state_dict()`` (just t) is all a checkpoint needs.
    """

    def __init__(self, optimizer):
        self.optimizer, self.t = optimizer, 0

    def step(self):
        self.t += 1
        self._apply()

    def _apply(self):
        raise NotImplementedError

    def state_dict(self):
        return {"t": self.t}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        self._apply()


class LRSchedule(Schedule):
    """Sets every group's lr to ``initial_lr * factor(t)``."""

    def factor(self, t):
        raise NotImplementedError

    def _apply(self):
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor(self.t)


class StepLR(LRSchedule):
    """Multiply every group's initial lr by gamma once per ``step_size`` calls of step() (call it once per epoch)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        name = type(self).__name__
        check_integer(f"{name}: step_size", step_size, low=1)
        check_number(f"{name}: gamma", gamma, low=0, low_included=False)
        super().__init__(optimizer)
        self.step_size, self.gamma = step_size, gamma

    def factor(self, t):
        return self.gamma ** (t // self.step_size)


class ExponentialLR(StepLR):
    """lr = initial_lr * gamma ** epoch (Koch et al. decay each layer's rate by 1% per epoch: gamma=0.99)."""

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer, step_size=1, gamma=gamma)


class CosineLR(LRSchedule):
    """lr = initial_lr * (1 + cos(pi t / total)) / 2: from the initial rate down to 0 over ``total`` steps
    (Loshchilov & Hutter 2017, without restarts); call step() after every optimizer step."""

    def __init__(self, optimizer, total):
        check_integer("CosineLR: total", total, low=1)
        super().__init__(optimizer)
        self.total = total

    def factor(self, t):
        return (1 + math.cos(math.pi * min(t, self.total) / self.total)) / 2


class MomentumRamp(Schedule):
    """SGD momentum that starts at ``start`` in every group and moves linearly, once per ``step_size`` calls of
    step() (an epoch), to each group's own momentum (its value when the ramp is made), reached after ``length``
    such epochs (Koch et al. 2015: from 0.5, a step each epoch, to each layer's mu_j)."""

    def __init__(self, optimizer, length, step_size=1, start=0.5):
        name = type(self).__name__
        check_integer(f"{name}: length", length, low=1)
        check_integer(f"{name}: step_size", step_size, low=1)
        check_number(f"{name}: start", start, low=0, high=1)
        if not isinstance(optimizer, SGD):
            raise TypeError(f"{name}: needs an SGD optimizer (the one with momentum), got {type(optimizer).__name__}")
        super().__init__(optimizer)
        self.length, self.step_size, self.start = length, step_size, start
        self.final = [group["momentum"] for group in optimizer.param_groups]
        self._apply()  # the first step already uses the start value

    def _apply(self):
        done = min(self.t // self.step_size / self.length, 1.0)  # the share of the ramp behind us
        for group, final in zip(self.optimizer.param_groups, self.final):
            group["momentum"] = self.start + (final - self.start) * done


def layer_groups(model, settings):
    """Parameter groups, one per layer of ``model`` (each module that holds parameters, in the model's order),
    layer i with the optimizer settings ``settings[i]``, e.g. ``{"lr": 1e-2, "momentum": 0.9}``."""
    layers = {}
    for name, p in model.named_parameters():
        layers.setdefault(name.rpartition(".")[0], []).append(p)  # "tower.0.weight" belongs to layer "tower.0"
    if len(settings) != len(layers):
        raise ValueError(f"layer_groups: got settings for {len(settings)} layers, but the model has {len(layers)} "
                         f"layers with parameters ({', '.join(layers)})")
    return [{"params": params, **setting} for params, setting in zip(layers.values(), settings)]
