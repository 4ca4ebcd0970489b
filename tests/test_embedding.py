"""Word embeddings and masked pooling over time: finite differences on drawn shapes, the definitions, the padding
convention, errors."""
import numpy as np
import pytest
from conftest import DEVICES, on
from hypothesis import given, settings
from hypothesis import strategies as st

import tinysiam as ts
from tinysiam import nn
from tinysiam.app.catalogue.ops import distinct
from tinysiam.engine.backend import to_numpy
from tinysiam.engine.embedding import embedding, masked_max, masked_mean, sequence_mask
from tinysiam.engine.gradcheck import gradcheck

FAST = settings(max_examples=20, deadline=None)
on_each_device = pytest.mark.parametrize("device", DEVICES)
seeds = st.integers(0, 2**16)


@st.composite
def ids_and_table(draw):
    """A table (V, D) and ids (N, L) drawn from few rows, so that ids repeat."""
    vocab, dim = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    n, length = draw(st.integers(1, 3)), draw(st.integers(1, 5))
    ids = np.array(draw(st.lists(st.integers(0, vocab - 1), min_size=n * length, max_size=n * length)))
    return vocab, dim, ids.reshape(n, length)


@st.composite
def padded_batches(draw):
    """(N, C, L) and lengths in [1, L], at least one sequence padded when L > 1."""
    n, c, length = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 6))
    lengths = np.array(draw(st.lists(st.integers(1, length), min_size=n, max_size=n)))
    return n, c, length, lengths


# ----- gradients against finite differences, on every device ------------------------------------------------
@on_each_device
@FAST
@given(case=ids_and_table(), seed=seeds, padding=st.booleans())
def test_embedding_gradients_with_repeated_ids(device, case, seed, padding):
    vocab, dim, ids = case
    table = np.random.default_rng(seed).standard_normal((vocab, dim))
    padding_id = 0 if padding else None
    gradcheck(lambda w, i: embedding(w, i, padding_id), *on(device, table, ids))


@on_each_device
@FAST
@given(case=padded_batches(), seed=seeds, as_mask=st.booleans())
def test_masked_pooling_gradients(device, case, seed, as_mask):
    n, c, length, lengths = case
    rng = np.random.default_rng(seed)
    mask = np.arange(length) < lengths[:, None] if as_mask else lengths
    gradcheck(lambda x, m: masked_mean(x, m), *on(device, rng.standard_normal((n, c, length)), mask))
    x = distinct(rng, (n, c, length))  # no ties
    gradcheck(lambda x, m: masked_max(x, m), *on(device, x, mask))


@on_each_device
@FAST
@given(case=padded_batches(), seed=seeds)
def test_masked_pooling_with_any_mask(device, case, seed):
    """Valid steps need not be a prefix: a mask may mark any non-empty set of steps."""
    n, c, length, _ = case
    rng = np.random.default_rng(seed)
    mask = rng.random((n, length)) < 0.5
    mask[np.arange(n), rng.integers(0, length, n)] = True  # at least one valid step per row
    x = distinct(rng, (n, c, length))
    gradcheck(lambda x, m: masked_mean(x, m), *on(device, x, mask))
    gradcheck(lambda x, m: masked_max(x, m), *on(device, x, mask))


# ----- the definitions ------------------------------------------------------------------------------------
@FAST
@given(case=padded_batches(), seed=seeds)
def test_masked_pooling_matches_the_valid_slices(case, seed):
    n, c, length, lengths = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, length))
    x_padded = np.where(np.arange(length) < lengths[:, None, None], x, 1e6)  # huge values in the padding
    mean, top = masked_mean(ts.Tensor(x_padded), lengths).numpy(), masked_max(ts.Tensor(x_padded), lengths).numpy()
    for i, k in enumerate(lengths):
        np.testing.assert_allclose(mean[i], x[i, :, :k].mean(axis=1), atol=1e-12)
        np.testing.assert_array_equal(top[i], x[i, :, :k].max(axis=1))


def test_padding_gets_no_gradient_and_repeated_ids_add_up(device):
    table = ts.Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True, device=device)
    ids = np.array([[2, 3, 2, 0], [2, 0, 0, 0]])
    out = embedding(table, ids, padding_id=0)
    np.testing.assert_array_equal(out.numpy()[0, 3], [0, 0, 0])  # padding reads zeros, not row 0 (0, 1, 2)
    np.testing.assert_array_equal(out.numpy()[1, 0], [6, 7, 8])
    weights = np.arange(1.0, 9.0).reshape(2, 4, 1)  # position (n, t) weighted by 4n + t + 1
    (out * ts.Tensor(np.broadcast_to(weights, (2, 4, 3)).copy(), device=device)).sum().backward()
    grad = to_numpy(table.grad)
    np.testing.assert_array_equal(grad[:, 0], [0, 0, 1 + 3 + 5, 2])  # row 2 read three times; row 0 none
    x = ts.Tensor(np.ones((2, 1, 4)), requires_grad=True, device=device)
    (masked_mean(x, np.array([2, 4])) + masked_max(x, np.array([2, 4]))).sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad)[:, 0], [[1.5, 0.5, 0, 0], [1.25, 0.25, 0.25, 0.25]])


def test_masked_max_tie_sends_the_gradient_to_the_first_valid_maximum():
    x = ts.Tensor(np.array([[[9.0, 3.0, 3.0, 1.0, 9.0]]]), requires_grad=True)
    mask = np.array([[False, True, True, True, False]])
    out = masked_max(x, mask)
    out.sum().backward()
    assert out.item() == 3.0
    np.testing.assert_array_equal(x.grad, [[[0, 1, 0, 0, 0]]])


def test_same_values_on_each_device(device):
    rng = np.random.default_rng(0)
    table, ids, lengths = rng.standard_normal((7, 4)), rng.integers(0, 7, (3, 5)), np.array([5, 2, 1])
    expected = masked_max(embedding(ts.Tensor(table), ids, 0).transpose(0, 2, 1), lengths).numpy()
    t = ts.Tensor(table, requires_grad=True, device=device)
    out = masked_max(embedding(t, ids, 0).transpose(0, 2, 1), lengths)
    out.sum().backward()
    assert out.device == device and t.grad.shape == (7, 4)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-12)


# ----- the layers --------------------------------------------------------------------------------------------
def test_embedding_layer_keeps_its_padding_row_at_zero_while_training():
    rng = np.random.default_rng(0)
    layer = nn.Embedding(6, 4, rng=rng)
    assert layer.weight.shape == (6, 4) and not layer.weight.data[0].any()
    assert "Embedding(6, 4, padding_id=0)" in repr(layer)
    opt = ts.optim.Adam(layer.parameters(), lr=0.1, weight_decay=0.01)
    for _ in range(3):
        out = layer(np.array([[1, 5, 0, 0], [2, 0, 0, 0]]))
        opt.zero_grad()
        (out * out).sum().backward()
        opt.step()
    assert not layer.weight.data[0].any() and layer.weight.grad[0].tolist() == [0, 0, 0, 0]
    assert layer.weight.data[1].any()
    cf = nn.Embedding(6, 4, channels_first=True, rng=rng)
    assert cf(np.array([[1, 2, 3]])).shape == (1, 4, 3)
    assert nn.Embedding(6, 4, padding_id=None, rng=rng).weight.data[0].any()


def test_padding_does_not_change_a_sentence_through_conv_and_masked_pooling():
    """The padding row reads as zeros, like Conv1d's own zero padding: padding a batch further changes nothing."""
    rng = np.random.default_rng(1)
    embed, conv = nn.Embedding(9, 4, channels_first=True, rng=rng), nn.Conv1d(4, 3, 3, padding=2, rng=rng)
    embed.astype(np.float64), conv.astype(np.float64)
    ids = np.array([[4, 7, 2, 0, 0], [3, 8, 8, 1, 6]])
    lengths = np.array([3, 5])

    def encode(ids):
        h = conv(embed(ids)).relu()
        return masked_max(h, lengths + 2).numpy(), masked_mean(h, lengths + 2).numpy()

    longer = np.pad(ids, ((0, 0), (0, 4)))
    for a, b in zip(encode(ids), encode(longer)):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_masked_pooling_layers():
    x = ts.Tensor(np.array([[[1.0, 5.0, 3.0]], [[2.0, 0.0, 9.0]]]))
    np.testing.assert_array_equal(nn.MaskedMaxPool1d()(x, np.array([1, 2])).numpy(), [[1.0], [2.0]])
    np.testing.assert_array_equal(nn.MaskedMeanPool1d()(x, np.array([3, 2])).numpy(), [[3.0], [1.0]])
    with pytest.raises(TypeError, match="MaskedMeanPool1d: input has dtype int64"):
        nn.MaskedMeanPool1d()(ts.Tensor(np.ones((1, 1, 2), np.int64)), np.array([1]))


# ----- bad input -----------------------------------------------------------------------------------------
def test_embedding_refuses_ids_that_are_not_row_numbers():
    table = ts.Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"embedding: ids must be integers, got dtype float64 \(values like \[1\.5"):
        embedding(table, np.array([[1.5, 2.0]]))
    with pytest.raises(ValueError, match=r"embedding: ids must be integers, got dtype bool"):
        embedding(table, np.array([True]))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 5\) \(the table's rows\), got 5 at position \(1, 0\)"):
        embedding(table, np.array([[0, 1], [5, 2]]))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 5\).*got -1 at position \(2,\)"):
        embedding(table, np.array([0, 1, -1]))
    with pytest.raises(ValueError, match=r"padding_id must lie in \[0, 5\).*got 7"):
        embedding(table, np.array([0]), padding_id=7)
    with pytest.raises(TypeError, match="embedding: table has dtype int64, not floating-point"):
        embedding(ts.Tensor(np.ones((5, 2), np.int64)), np.array([0]))
    with pytest.raises(ValueError, match=r"embedding: ids must lie in \[0, 3\).*got 3"):
        nn.Embedding(3, 2)(np.array([[3]]))
    with pytest.raises(ValueError, match=r"Embedding: padding_id must lie in \[0, 3\).*got 3"):
        nn.Embedding(3, 2, padding_id=3)
    with pytest.raises(ValueError, match="Embedding: vocab_size must be an integer >= 1, got 0"):
        nn.Embedding(0, 2)


def test_all_padded_sequences_are_refused():
    x = ts.Tensor(np.ones((3, 2, 4)))
    with pytest.raises(ValueError, match=r"masked_mean: sequence 1 has no valid step \(all 4 of its steps are padding"):
        masked_mean(x, np.array([2, 0, 4]))
    with pytest.raises(ValueError, match=r"masked_max: sequence 2 has no valid step"):
        masked_max(x, np.array([[True] * 4, [False, True, False, False], [False] * 4]))
    with pytest.raises(ValueError, match=r"masked_max: lengths\[0\] is 5, more than the 4 steps of x"):
        masked_max(x, np.array([5, 1, 1]))
    with pytest.raises(ValueError, match=r"mask must have shape \(3, 4\) \(N, L of x\), got \(3, 3\)"):
        masked_mean(x, np.ones((3, 3), bool))
    with pytest.raises(ValueError, match=r"lengths must have shape \(3,\)"):
        masked_mean(x, np.array([1, 2]))
    expected = "mask must be \\(N, L\\) booleans or \\(N,\\) integer lengths, got dtype float64"
    with pytest.raises(ValueError, match=expected):
        masked_mean(x, np.ones(3))
    with pytest.raises(ValueError, match=r"x must be \(N, C, L\), got shape \(3, 4\)"):
        masked_max(ts.Tensor(np.ones((3, 4))), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="sequence 0 has no valid step"):
        sequence_mask(np.array([0]), 1, 3)
