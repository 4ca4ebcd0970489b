"""Word embeddings and pooling over the valid steps of padded sequences, with hand-written backward passes.

Sentences of different lengths are batched by padding: ids (N, L) hold each
sentence's word ids followed by a padding id up to the longest sentence of
the batch. ``embedding`` gathers one row of a table per id; ``masked_mean``
and ``masked_max`` pool (N, C, L) features over time using only the steps a
mask marks valid, so the padding changes neither the value nor the gradient.
A mask is an (N, L) boolean array (True at a valid step) or (N,) integer
lengths (the first lengths[i] steps of row i are valid); ``sequence_mask``
turns either into the boolean form. (docs/derivations.md#embeddings-and-masked-pooling)
"""
import numpy as np

from .backend import xp_of
from .checks import check_float_tensor, check_integer
from .debug import may_read
from .tensor import Function, Tensor


class EmbeddingOp(Function):
    """out[..., :] = table[ids[...], :] (ids of any shape -> ids.shape + (D,)). Positions holding
    ``padding_id`` read a zero vector whatever that row holds, so its row gets no gradient."""

    def __init__(self, padding_id=None):
        self.padding_id = padding_id

    def forward(self, table, ids):
        self.table_shape, self.ids = table.shape, ids
        out = table[ids]  # fancy indexing copies: scaling out below leaves the table untouched
        if self.padding_id is not None:
            out *= (ids != self.padding_id)[..., None]
        return out

    def backward(self, g):  # dL/dtable[v] = sum of g over the positions reading row v (none for padding_id)
        xp = xp_of(g)
        vocab, dim = self.table_shape
        rows = self.ids.reshape(-1)
        g2 = g.reshape(-1, dim)
        if self.padding_id is not None:
            g2 = g2 * (rows != self.padding_id)[:, None]
        # one flat scatter-add: element (v, d) of the table is flat index v * D + d; repeated ids add up
        grad = xp.zeros(vocab * dim, dtype=g.dtype)
        xp.add.at(grad, (rows[:, None] * dim + xp.arange(dim)).reshape(-1), g2.reshape(-1))
        return grad.reshape(vocab, dim), None


def embedding(table, ids, padding_id=None):
    """Rows of ``table`` (V, D) picked by integer ``ids`` (any shape, values in [0, V)): ids.shape + (D,).

    With ``padding_id``, positions holding it give zero vectors and its row gets no gradient.
    """
    check_float_tensor("embedding", "table", table)
    if table.ndim != 2:
        raise ValueError(f"embedding: table must be (V, D), got shape {table.shape}")
    vocab = table.shape[0]
    if padding_id is not None:
        check_integer("embedding: padding_id", padding_id, low=0)
        if padding_id >= vocab:
            raise ValueError(f"embedding: padding_id must lie in [0, {vocab}) (the table's rows), got {padding_id}")
    return EmbeddingOp(padding_id)(table, check_ids("embedding", ids, vocab, table))


class MaskedMeanOp(Function):
    """out[n, c] = sum_t m[n, t] x[n, c, t] / sum_t m[n, t]: the mean of x (N, C, L) over the valid steps."""

    def forward(self, x, mask):
        self.weights = (mask / mask.sum(axis=1, keepdims=True)).astype(x.dtype)[:, None, :]  # m / count: (N, 1, L)
        return (x * self.weights).sum(axis=2)

    def backward(self, g):  # d out[n, c] / d x[n, c, t] = m[n, t] / count[n]: 0 at a padded step
        return g[:, :, None] * self.weights, None


def masked_mean(x, mask):
    """Mean of x (N, C, L) over each sequence's valid steps -> (N, C); ``mask``: (N, L) booleans or (N,) lengths."""
    return _masked_pool("masked_mean", MaskedMeanOp, x, mask)


class MaskedMaxOp(Function):
    """out[n, c] = max over the valid steps t of x[n, c, t]; a tie sends the gradient to the first maximum."""

    def forward(self, x, mask):
        xp = xp_of(x)
        self.length = x.shape[2]
        self.winner = xp.where(mask[:, None, :], x, -xp.inf).argmax(axis=2)  # (N, C): a padded step never wins
        return xp.take_along_axis(x, self.winner[:, :, None], axis=2)[:, :, 0]

    def backward(self, g):  # d out[n, c] / d x[n, c, t] = 1 at the (first) valid maximum, 0 elsewhere
        xp = xp_of(g)
        return (xp.arange(self.length) == self.winner[:, :, None]) * g[:, :, None], None


def masked_max(x, mask):
    """Maximum of x (N, C, L) over each sequence's valid steps -> (N, C); ``mask``: (N, L) booleans or (N,)
    lengths. A tie sends the gradient to the first maximum, as ``max`` and max-pooling do."""
    return _masked_pool("masked_max", MaskedMaxOp, x, mask)


# ----- checking arguments -------------------------------------------------------------------------------
def _on_device_of(value, like):
    """``value`` as an array: a Tensor's own data (a device mismatch is then the op's error), any other
    array moved to the device of the Tensor ``like``."""
    return value.data if isinstance(value, Tensor) else xp_of(like.data).asarray(value)


def check_ids(fn, ids, vocab_size, like):
    """``ids`` as an integer Tensor (on ``like``'s device unless already a Tensor); ValueError naming ``ids``
    and the offending value if they are not integers or lie outside [0, vocab_size) (the range is checked
    where ``may_read`` allows: on a GPU, inside ``detect_anomaly()``)."""
    data = _on_device_of(ids, like)
    if data.dtype.kind not in "iu":
        shown = data.reshape(-1)[:3].tolist()
        raise ValueError(f"{fn}: ids must be integers, got dtype {data.dtype} (values like {shown})")
    if data.size and may_read(data):
        low, high = int(data.min()), int(data.max())
        if low < 0 or high >= vocab_size:
            bad = low if low < 0 else high
            where = tuple(int(i) for i in np.unravel_index(int((data == bad).argmax()), data.shape))
            raise ValueError(f"{fn}: ids must lie in [0, {vocab_size}) (the table's rows), got {bad} at "
                             f"position {where}")
    return Tensor(data)


def sequence_mask(mask, n, length, fn="sequence_mask", like=None):
    """(N, L) booleans from a boolean mask of that shape or from (N,) integer lengths in [1, L].

    A sequence without any valid step (all padded, or length 0) is refused: it has no mean and no maximum.
    The values are checked where ``may_read`` allows (on a GPU, inside ``detect_anomaly()``).
    """
    data = _on_device_of(mask, like) if like is not None else (mask.data if isinstance(mask, Tensor) else
                                                                np.asarray(mask))
    xp = xp_of(data)
    if data.dtype.kind == "b":
        if data.shape != (n, length):
            raise ValueError(f"{fn}: mask must have shape {(n, length)} (N, L of x), got {data.shape}")
        empty = ~data.any(axis=1)
    elif data.dtype.kind in "iu":
        if data.shape != (n,):
            raise ValueError(f"{fn}: lengths must have shape ({n},) (one per sequence of x), got {data.shape}")
        if may_read(data) and bool((data > length).any()):
            i = int((data > length).argmax())
            raise ValueError(f"{fn}: lengths[{i}] is {int(data[i])}, more than the {length} steps of x")
        empty = data <= 0
        data = xp.arange(length) < data[:, None]
    else:
        raise ValueError(f"{fn}: mask must be (N, L) booleans or (N,) integer lengths, got dtype {data.dtype}")
    if may_read(data) and bool(empty.any()):
        i = int(empty.argmax())
        raise ValueError(f"{fn}: sequence {i} has no valid step (all {length} of its steps are padding); "
                         "every sequence needs at least one")
    return data


def _masked_pool(fn, op_class, x, mask):
    check_float_tensor(fn, "x", x)
    if x.ndim != 3:
        raise ValueError(f"{fn}: x must be (N, C, L), got shape {x.shape}")
    n, _, length = x.shape
    return op_class()(x, Tensor(sequence_mask(mask, n, length, fn, like=x)))
