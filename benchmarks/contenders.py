"""The contenders: one adapter per framework (tinysiam, PyTorch, DeZero).

Each adapter turns the float32 arrays of ``nets`` into its framework's
tensors, and gives the measurement a forward function for a per-op
benchmark, a training step for a step benchmark, an epoch of the training
loop for an end-to-end benchmark, and the few framework calls the timing loop
needs (backward, gradients, synchronisation, memory).
"""
import numpy as np
from nets import described_net, epoch_data, step_arrays, tinysiam_net

MB = 1e6
MARGIN, LEARNING_RATE, MOMENTUM = 1.0, 1e-3, 0.9


class NotMeasured(Exception):
    """A contender that has no counterpart of a benchmark: the report says so in its cell."""


def _cupy_pool_mb():
    """Bytes CuPy's memory pool holds (it keeps freed blocks, so this is about the peak)."""
    import cupy

    return cupy.get_default_memory_pool().total_bytes() / MB


def _mined(embeddings, labels):
    """Batch-hard triplets (anchor, positive, negative indices) by tinysiam's miner, as ``tinysiam train`` mines:
    every contender picks its triplets the same way, on the host, from its own embeddings."""
    from tinysiam.siamese import batch_hard_triplets

    return batch_hard_triplets(embeddings, labels)


def _epoch_set(bench):
    """The epoch benchmark's training set, as ``tinysiam train`` holds it."""
    from tinysiam.data import LabelledImages

    images, labels = epoch_data(bench)
    return LabelledImages(images, labels, [str(c) for c in range(bench.settings["classes"])])


def _epoch_batches(bench, rng):
    """The training loop's batches: class-balanced indices, then Koch's affine augmentation, both drawn from rng."""
    from tinysiam.app.objectives import BatchHardTripletObjective
    from tinysiam.data import affine_augment

    train = _epoch_set(bench)
    sampler = BatchHardTripletObjective(_epoch_config(bench, "cpu"), train, rng)
    for _ in range(bench.settings["steps"]):
        index = sampler.class_balanced_batch()
        yield affine_augment(train.images[index], rng), train.labels[index]


def _epoch_config(bench, device):
    """The TrainConfig of ``tinysiam train`` for an epoch benchmark."""
    from tinysiam.app.config import TrainConfig

    s = bench.settings
    return TrainConfig(preset=s["preset"], loss=s["loss"], optimizer=s["optimizer"], lr=LEARNING_RATE,
                       batch=s["images"], margin=MARGIN, augment=True, device=device, seed=0,
                       steps_per_epoch=s["steps"])


def training_step(loss, zero_grad, update):
    """A training step: the loss, fresh gradients, backward, the optimizer's update; it returns the loss."""
    def step():
        value = loss()
        zero_grad()
        value.backward()
        update()
        return value

    return step


class TinysiamContender:
    """tinysiam as a library: the user's own loop over the public API, the process's allocator untouched."""

    def __init__(self, device, tf32=False):
        from tinysiam import backend

        self.device = backend.check_device(device)  # RuntimeError when there is no GPU: reported, column skipped
        self.reported = set()

    def constant(self, array):
        from tinysiam import backend

        return backend.to_device(array, self.device)

    def tensor(self, array):
        from tinysiam import Tensor

        return Tensor(self.constant(array), requires_grad=True)

    def op(self, bench, leaves, same):
        from tinysiam.engine.conv import conv2d, max_pool2d
        from tinysiam.nn.batchnorm import BatchNormOp
        from tinysiam.nn.layers import LinearOp
        from tinysiam.siamese import distances, losses

        if bench.kind == "conv":
            return lambda: conv2d(leaves["x"], leaves["weight"], leaves["bias"], padding=bench.settings["padding"])
        if bench.kind == "pool":
            return lambda: max_pool2d(leaves["x"], 2)
        if bench.kind == "batchnorm":  # training mode: the batch's statistics
            return lambda: BatchNormOp(1e-5)(leaves["x"], leaves["weight"], leaves["bias"])
        if bench.kind == "linear":
            return lambda: LinearOp()(leaves["x"], leaves["weight"], leaves["bias"])  # what nn.Linear runs
        a, p, q, logits = (leaves.get(name) for name in ("a", "p", "q", "logits"))
        return {"contrastive": lambda: losses.contrastive_loss(distances.l2_distance(a, p), same),
                "triplet": lambda: losses.triplet_loss(a, p, q),
                "bce": lambda: losses.bce_with_logits(logits, same),
                "nt_xent": lambda: losses.nt_xent_loss(a, p, temperature=0.5)}[bench.settings["loss"]]

    def step(self, bench):
        from tinysiam import Tensor, optim
        from tinysiam.siamese import TwinNetwork, distances, losses

        tower, head, _ = tinysiam_net(bench)
        model = TwinNetwork(tower, head=head).to(self.device)
        optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM) \
            if bench.settings["optimizer"] == "sgd" else optim.Adam(model.parameters(), lr=LEARNING_RATE)
        images, labels = step_arrays(bench)
        half = len(images) // 2
        x, x1, x2 = (Tensor(self.constant(a)) for a in (images, images[:half], images[half:]))
        same = self.constant(labels)

        def loss():
            if bench.settings["loss"] == "triplet":  # as tinysiam train's objective (app/objectives.py)
                e = tower(x)
                anchor, positive, negative = _mined(e.data, labels)
                return losses.triplet_loss(e[anchor], e[positive], e[negative], margin=MARGIN)
            out = model(x1, x2)
            return losses.bce_with_logits(out, same) if head else \
                losses.contrastive_loss(distances.l2_distance(*out), same, margin=MARGIN)

        return training_step(loss, optimizer.zero_grad, optimizer.step), list(model.parameters())

    def epoch(self, bench):
        """``tinysiam train``'s own loop: ``Trainer.train_step`` (sampling, augmentation, step); no validation."""
        from tinysiam.app import objectives, training
        from tinysiam.data import affine_augment

        data = _epoch_set(bench)
        trainer = training.Trainer(_epoch_config(bench, self.device), data, data, run=None, augment_fn=affine_augment,
                                   progress=False)

        def epoch():
            for _ in range(bench.settings["steps"]):
                trainer.train_step()

        parts = [(objectives.BatchHardTripletObjective, "class_balanced_batch", "sampling (class-balanced batch)"),
                 (trainer, "augment_fn", "augmentation (affine warp, NumPy)"),
                 (objectives, "batch_hard_triplets", "batch-hard mining")]
        return epoch, list(trainer.model.parameters()), parts

    def backward(self, out, grad):
        out.backward(grad)

    def clear_grad(self, leaf):
        leaf.grad = None

    def grad_dtype(self, leaf):
        return str(leaf.grad.dtype)

    def value(self, loss):
        return loss.item()

    def synchronize(self):
        if self.device == "gpu":
            import cupy

            cupy.cuda.Device().synchronize()

    def gpu_memory_mb(self):
        return _cupy_pool_mb() if self.device == "gpu" else None

    def new_algorithms(self):
        """{layer: algorithm} that conv2d chose since the last call (by the layer's shape, or by timing them
        once per shape with "benchmark")."""
        from tinysiam.engine.conv_algorithms import chosen_algorithms

        chosen = chosen_algorithms()
        new = {layer: name for layer, name in chosen.items() if layer not in self.reported}
        self.reported.update(new)
        return new


class TorchContender:
    def __init__(self, device, tf32=False):
        import torch

        if device == "gpu" and not torch.cuda.is_available():
            raise RuntimeError("torch sees no CUDA device")
        # cuDNN may use TF32 (10-bit mantissa) by default; CuPy computes true float32 unless CUPY_TF32=1.
        # Both follow --tf32, so every contender does the same arithmetic.
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
        self.torch, self.device = torch, torch.device("cuda" if device == "gpu" else "cpu")

    def constant(self, array):
        return self.torch.tensor(array, device=self.device)

    def tensor(self, array):
        return self.torch.tensor(array, device=self.device, requires_grad=True)

    def op(self, bench, leaves, same):
        F = self.torch.nn.functional
        if bench.kind == "conv":
            return lambda: F.conv2d(leaves["x"], leaves["weight"], leaves["bias"], padding=bench.settings["padding"])
        if bench.kind == "pool":
            return lambda: F.max_pool2d(leaves["x"], 2)
        if bench.kind == "batchnorm":
            c = bench.settings["c"]
            mean, var = self.torch.zeros(c, device=self.device), self.torch.ones(c, device=self.device)
            return lambda: F.batch_norm(leaves["x"], mean, var, leaves["weight"], leaves["bias"], training=True)
        if bench.kind == "linear":
            return lambda: F.linear(leaves["x"], leaves["weight"], leaves["bias"])
        loss = bench.settings["loss"]
        if loss == "contrastive":
            return lambda: self.contrastive(leaves["a"], leaves["p"], same)
        if loss == "triplet":
            return lambda: F.triplet_margin_loss(leaves["a"], leaves["p"], leaves["q"], margin=MARGIN, eps=0)
        if loss == "bce":
            return lambda: F.binary_cross_entropy_with_logits(leaves["logits"], same)
        n = bench.settings["n"]
        partner = self.torch.cat([self.torch.arange(n, 2 * n), self.torch.arange(n)]).to(self.device)
        itself = self.torch.eye(2 * n, dtype=self.torch.bool, device=self.device)

        def nt_xent():
            u = F.normalize(self.torch.cat([leaves["a"], leaves["p"]]), dim=1)
            similarity = (u @ u.T / 0.5).masked_fill(itself, float("-inf"))  # a view is not its own negative
            return F.cross_entropy(similarity, partner)

        return nt_xent

    def contrastive(self, e1, e2, same):
        d = self.torch.nn.functional.pairwise_distance(e1, e2, eps=0)
        return (same * d**2 / 2 + (1 - same) * (MARGIN - d).clamp(min=0) ** 2 / 2).mean()

    def triplet(self, embeddings, labels):
        anchor, positive, negative = _mined(embeddings.detach().cpu().numpy(), labels)
        return self.torch.nn.functional.triplet_margin_loss(embeddings[anchor], embeddings[positive],
                                                            embeddings[negative], margin=MARGIN, eps=0)

    def layer(self, layer):
        """The PyTorch module of one described layer, holding its initial parameters."""
        nn, z = self.torch.nn, layer.sizes
        if layer.kind == "conv":
            module = nn.Conv2d(z["c"], z["oc"], z["k"], stride=z["stride"], padding=z["padding"],
                               bias=layer.weights[1] is not None)
        elif layer.kind == "batchnorm":
            module = nn.BatchNorm2d(z["c"], eps=z["eps"], momentum=z["momentum"])
        elif layer.kind == "linear":
            module = nn.Linear(z["fin"], z["fout"], bias=layer.weights[1] is not None)
        elif layer.kind == "pool":
            module = nn.MaxPool2d(z["k"], z["stride"])
        else:
            module = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "flatten": nn.Flatten}[layer.kind]()
        with self.torch.no_grad():
            for param, array in zip((getattr(module, "weight", None), getattr(module, "bias", None)), layer.weights):
                if array is not None:
                    param.copy_(self.torch.from_numpy(array))
        return module.to(self.device)

    def net(self, bench):
        """(tower, head or None, parameters, optimizer, rng) of a step benchmark."""
        layers, head, rng = described_net(bench)
        tower = self.torch.nn.Sequential(*map(self.layer, layers))
        head = head and self.layer(head)
        params = list(tower.parameters()) + (list(head.parameters()) if head else [])
        optimizer = self.torch.optim.SGD(params, lr=LEARNING_RATE, momentum=MOMENTUM) \
            if bench.settings["optimizer"] == "sgd" else self.torch.optim.Adam(params, lr=LEARNING_RATE)
        return tower, head, params, optimizer, rng

    def step(self, bench):
        F = self.torch.nn.functional
        tower, head, params, optimizer, _ = self.net(bench)
        images, labels = step_arrays(bench)
        x, same = self.constant(images), self.constant(labels)

        def loss():
            if bench.settings["loss"] == "triplet":
                return self.triplet(tower(x), labels)
            e1, e2 = tower(x).chunk(2)  # one tower pass over both branches, as tinysiam's TwinNetwork does
            return F.binary_cross_entropy_with_logits(head((e1 - e2).abs())[:, 0], same) if head \
                else self.contrastive(e1, e2, same)

        return training_step(loss, optimizer.zero_grad, optimizer.step), params

    def epoch(self, bench):
        """A PyTorch training loop with the same recipe: the same batches, augmentation, miner, loss and Adam."""
        tower, _, params, optimizer, rng = self.net(bench)

        def epoch():
            for images, labels in _epoch_batches(bench, rng):
                loss = self.triplet(tower(self.torch.from_numpy(images).to(self.device)), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                loss.item()

        return epoch, params, []

    def backward(self, out, grad):
        out.backward(grad)

    def clear_grad(self, leaf):
        leaf.grad = None

    def grad_dtype(self, leaf):
        return str(leaf.grad.dtype).removeprefix("torch.")

    def value(self, loss):
        return loss.item()

    def synchronize(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def gpu_memory_mb(self):
        return self.torch.cuda.max_memory_reserved() / MB if self.device.type == "cuda" else None


def import_dezero():
    """Import DeZero 0.0.13 with two documented compatibility shims (benchmark workers only).

    1. It still names ``np.int`` (removed in NumPy 1.24): alias it to ``int``.
    2. It turns Python numbers into 0-d float64 arrays (``1 - y`` in its own sigmoid backward);
       under NumPy 2's promotion rules these upcast float32 arrays, so DeZero silently trains in
       float64. Its ``as_array`` is replaced by one that makes float32 numbers instead.
    The harness checks every gradient's dtype, so a shim that stops working is noticed.
    """
    if not hasattr(np, "int"):
        np.int = int
    import dezero
    import dezero.core

    def as_float32_array(x, array_module=np):
        return array_module.asarray(x, dtype=np.float32) if np.isscalar(x) else x

    dezero.core.as_array = as_float32_array
    return dezero


class DezeroContender:
    def __init__(self, device, tf32=False):
        dezero = self.dezero = import_dezero()
        self.xp = np
        if device == "gpu":
            import cupy
            import cupyx

            if cupy.cuda.runtime.getDeviceCount() == 0:
                raise RuntimeError("CuPy sees no CUDA device")
            if not hasattr(cupy, "scatter_add"):  # moved to cupyx in CuPy 13; DeZero's GetItem backward calls it
                cupy.scatter_add = cupyx.scatter_add
            self.xp = cupy
        self.device = device

        class Abs(dezero.Function):  # DeZero has no abs: |x|, derivative sign(x)
            def forward(self, x):
                return abs(x)

            def backward(self, gy):
                x = self.inputs[0].data
                return gy * dezero.cuda.get_array_module(x).sign(x)

        class Concatenate(dezero.Function):  # nor a concatenation of two variables along the batch
            def forward(self, a, b):
                self.n = len(a)
                return dezero.cuda.get_array_module(a).concatenate([a, b])

            def backward(self, gy):
                return gy[:self.n], gy[self.n:]

        self.abs = lambda x: Abs()(x)
        self.concatenate = lambda a, b: Concatenate()(a, b)

    def constant(self, array):
        return self.xp.asarray(array)

    def tensor(self, array):
        return self.dezero.Variable(self.constant(array))

    def op(self, bench, leaves, same):
        F = self.dezero.functions
        if bench.kind == "conv":
            return lambda: F.conv2d(leaves["x"], leaves["weight"], leaves["bias"], pad=bench.settings["padding"])
        if bench.kind == "pool":
            return lambda: F.pooling(leaves["x"], 2, 2)
        if bench.kind == "batchnorm":
            c = bench.settings["c"]
            mean, var = self.xp.zeros(c, np.float32), self.xp.ones(c, np.float32)
            return lambda: F.batch_nrom(leaves["x"], leaves["weight"], leaves["bias"], mean, var, eps=1e-5)
        if bench.kind == "linear":
            return lambda: F.linear(leaves["x"], leaves["weight"].T, leaves["bias"])  # DeZero's W is (in, out)
        loss = bench.settings["loss"]
        if loss == "contrastive":
            return lambda: self.contrastive(leaves["a"], leaves["p"], same)
        if loss == "triplet":
            return lambda: self.triplet(leaves["a"], leaves["p"], leaves["q"])
        if loss == "bce":
            return lambda: self.bce_with_logits(leaves["logits"], same)
        n = bench.settings["n"]
        partner = self.xp.concatenate([self.xp.arange(n, 2 * n), self.xp.arange(n)])
        itself = self.xp.diag(self.xp.full(2 * n, -np.inf, dtype=np.float32))

        def nt_xent():
            z = self.concatenate(leaves["a"], leaves["p"])
            u = z / F.sum(z * z, axis=1, keepdims=True) ** 0.5
            log_p = F.log_softmax(F.matmul(u, u.T) / 0.5 + itself)
            return -F.sum(log_p[self.xp.arange(2 * n), partner]) / (2 * n)

        return nt_xent

    def l2(self, e1, e2):
        return self.dezero.functions.sum((e1 - e2) ** 2, axis=1) ** 0.5

    def contrastive(self, e1, e2, same):
        d = self.l2(e1, e2)
        gap = self.dezero.functions.relu(MARGIN - d)
        return self.dezero.functions.sum(same * d * d / 2 + (1 - same) * gap * gap / 2) / len(same)

    def triplet(self, a, p, n):
        F = self.dezero.functions
        return F.sum(F.relu(self.l2(a, p) - self.l2(a, n) + MARGIN)) / len(a)

    def bce_with_logits(self, z, same):
        F = self.dezero.functions  # the overflow-free form: max(z, 0) - z y + log(1 + exp(-|z|))
        return F.sum(F.relu(z) - z * same + F.log(1 + F.exp(-self.abs(z)))) / len(same)

    def layer(self, model, name, layer):
        """A callable for one described layer; its parameters become attributes ``name`` of ``model``."""
        dezero, F, L, z = self.dezero, self.dezero.functions, self.dezero.layers, layer.sizes
        if layer.kind == "conv":
            (kh, kw), bias = z["k"], layer.weights[1]
            module = L.Conv2d(z["oc"], (kh, kw), stride=z["stride"], pad=z["padding"], nobias=bias is None,
                              in_channels=z["c"])
            module.W.data = layer.weights[0].copy()
        elif layer.kind == "linear":
            bias = layer.weights[1]
            module = L.Linear(z["fout"], nobias=bias is None, in_size=z["fin"])
            module.W.data = layer.weights[0].T.copy()  # DeZero's W is (in, out)
        elif layer.kind == "batchnorm":
            module = dezero.Layer()
            module.gamma, module.beta = (dezero.Parameter(w.copy()) for w in layer.weights)
            mean, var = self.xp.zeros(z["c"], np.float32), self.xp.ones(z["c"], np.float32)  # running statistics
            setattr(model, name, module)
            return lambda x: F.batch_nrom(x, module.gamma, module.beta, mean, var, decay=1 - z["momentum"],
                                          eps=z["eps"])
        elif layer.kind == "pool":
            return lambda x: F.pooling(x, z["k"], z["stride"])
        else:
            return {"relu": F.relu, "sigmoid": F.sigmoid, "flatten": lambda x: F.reshape(x, (len(x), -1))}[layer.kind]
        if bias is not None:
            module.b.data = bias.copy()
        setattr(model, name, module)
        return module

    def step(self, bench):
        dezero, F = self.dezero, self.dezero.functions
        layers, head_layer, _ = described_net(bench)
        model = dezero.Model()
        calls = [self.layer(model, f"layer{i}", layer) for i, layer in enumerate(layers)]
        head = head_layer and self.layer(model, "head", head_layer)
        if self.device == "gpu":
            model.to_gpu()
        optimizer = dezero.optimizers.MomentumSGD(lr=LEARNING_RATE, momentum=MOMENTUM) \
            if bench.settings["optimizer"] == "sgd" else dezero.optimizers.Adam(alpha=LEARNING_RATE)
        optimizer.setup(model)
        images, labels = step_arrays(bench)
        x, same, n = dezero.Variable(self.constant(images)), self.constant(labels), len(images) // 2

        def loss():
            h = x
            for call in calls:
                h = call(h)
            if bench.settings["loss"] == "triplet":
                anchor, positive, negative = _mined(dezero.cuda.as_numpy(h.data), labels)
                return self.triplet(h[anchor], h[positive], h[negative])
            e1, e2 = h[:n], h[n:]
            return self.bce_with_logits(F.reshape(head(self.abs(e1 - e2)), (n,)), same) if head \
                else self.contrastive(e1, e2, same)

        return training_step(loss, model.cleargrads, optimizer.update), list(model.params())

    def epoch(self, bench):
        raise NotMeasured("DeZero: no end-to-end loop written for it")

    def backward(self, out, grad):
        if grad is not None:
            out.grad = self.dezero.Variable(grad)
        out.backward()

    def clear_grad(self, leaf):
        leaf.cleargrad()

    def grad_dtype(self, leaf):
        return str(leaf.grad.dtype)

    def value(self, loss):
        return float(loss.data)

    def synchronize(self):
        if self.device == "gpu":
            self.xp.cuda.Device().synchronize()

    def gpu_memory_mb(self):
        return _cupy_pool_mb() if self.device == "gpu" else None


class TinysiamRetunedContender(TinysiamContender):
    """The same training steps and epoch after ``backend.reuse_freed_memory()``: what retuning glibc still adds."""

    def __init__(self, device, tf32=False):
        from tinysiam import backend

        if device != "cpu":
            raise RuntimeError("glibc's allocator holds no GPU memory")
        super().__init__(device, tf32)
        if not backend.reuse_freed_memory():
            raise RuntimeError("reuse_freed_memory() declined: not glibc on Linux, or TINYSIAM_MALLOC_TUNING=0")

    def op(self, bench, leaves, same):
        raise NotMeasured("training steps and the epoch only")


FRAMEWORKS = {"tinysiam": TinysiamContender, "tinysiam_retuned": TinysiamRetunedContender, "torch": TorchContender,
              "dezero": DezeroContender}
CONTENDERS = tuple(FRAMEWORKS)
TITLES = {"tinysiam": "tinysiam", "tinysiam_retuned": "tinysiam, retuned malloc", "torch": "PyTorch",
          "dezero": "DeZero"}
