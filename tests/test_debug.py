"""Seeing the graph (DOT text, rendering), tracing backward calls, and anomaly detection."""
import importlib.util
import io
import re
import shutil
import sys

import numpy as np
import pytest

import tinysiam as ts
from tinysiam.engine import debug, detect_anomaly, tensor, to_dot, trace
from tinysiam.engine.conv import conv2d


def parse_dot(text):
    """From to_dot's text: each node's label (a list of lines), the op names, and the edges by label."""
    nodes = re.findall(r'^  (\w+) \[label="((?:[^"\\]|\\.)*)", (\w+)=(\w+)\];$', text, re.M)
    labels = {node: label.split("\\n") for node, label, _, _ in nodes}
    ops = sorted(label for _, label, key, value in nodes if (key, value) == ("shape", "box"))
    edges = [(labels[a][0], labels[b][0]) for a, b in re.findall(r"^  (\w+) -> (\w+);$", text, re.M)]
    return labels, ops, edges


def small_graph():
    """loss = sum(tanh(x @ w)): w needs a gradient, x is data."""
    rng = np.random.default_rng(0)
    w = ts.Tensor(rng.standard_normal((2, 3)), requires_grad=True)
    x = ts.Tensor(rng.standard_normal((4, 2)))
    return x, w, (x @ w).tanh().sum()


# ----- DOT ----------------------------------------------------------------------------------------
def test_dot_has_every_op_and_tensor_with_its_shape_and_dtype():
    x, w, loss = small_graph()
    labels, ops, edges = parse_dot(to_dot(loss, names={"w": w, "x": x}))
    assert ops == ["MatMul", "Sum", "Tanh"] and len(labels) == 8
    assert ["x", "(4, 2) float64"] in labels.values() and ["w", "(2, 3) float64"] in labels.values()
    assert ["() float64", f"value {loss.item():.6g}"] in labels.values()
    assert sorted(edges) == sorted([("x", "MatMul"), ("w", "MatMul"), ("MatMul", "(4, 3) float64"),
                                    ("(4, 3) float64", "Tanh"), ("Tanh", "(4, 3) float64"),
                                    ("(4, 3) float64", "Sum"), ("Sum", "() float64")])


def test_dot_styles_constants_dashed_and_tensors_needing_grad_filled():
    x, w, loss = small_graph()
    text = to_dot(loss, names={"w": w, "x": x})
    assert re.search(r'\[label="x\\n\(4, 2\) float64", style=dashed\]', text)
    assert re.search(r'\[label="w\\n\(2, 3\) float64", style=filled\]', text)


def test_dot_shows_gradient_norms_after_backward():
    x, w, loss = small_graph()
    loss.backward(retain_graph=True)  # a plain backward frees the graph's links
    labels, _, _ = parse_dot(to_dot(loss, names={"w": w}))
    assert ["w", "(2, 3) float64", f"grad norm {np.linalg.norm(w.grad):.6g}"] in labels.values()
    assert ["(4, 2) float64"] in labels.values()  # data has no gradient


def test_dot_draws_an_input_used_twice_with_two_edges_and_escapes_names():
    a = ts.Tensor(np.ones(3), requires_grad=True)
    labels, ops, edges = parse_dot(to_dot(a * a, names={'a "left"\\': a}))
    assert edges.count(('a \\"left\\"\\\\', "Mul")) == 2
    assert ops == ["Mul"] and len(labels) == 3  # a, Mul, the product


def test_dot_of_a_tensor_without_graph_is_one_node():
    with ts.no_grad():
        y = ts.Tensor(np.ones(2), requires_grad=True) * 2.0
    labels, ops, edges = parse_dot(to_dot(y))
    assert list(labels.values()) == [["(2,) float64"]] and ops == edges == []


def test_render_without_the_graphviz_package_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes "import graphviz" fail
    with pytest.raises(ImportError, match=r"pip install tinysiam\[graph\].*to_dot\(\)"):
        debug.render(small_graph()[2], tmp_path / "graph.svg")


@pytest.mark.skipif(importlib.util.find_spec("graphviz") is None or shutil.which("dot") is None,
                    reason="needs the graphviz package (pip install -e '.[graph]') and Graphviz's dot program")
def test_render_writes_svg_and_png(tmp_path):
    x, w, loss = small_graph()
    loss.backward()
    svg = debug.render(loss, tmp_path / "graph.svg", names={"weights": w})
    assert svg == tmp_path / "graph.svg"
    assert "<svg" in svg.read_text() and "weights" in svg.read_text() and "MatMul" in svg.read_text()
    assert debug.render(loss, tmp_path / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----- trace ------------------------------------------------------------------------------------
def test_trace_prints_each_backward_call_in_order_with_shapes_and_norms():
    x, w, loss = small_graph()
    h = np.tanh(x.data @ w.data)
    g_h = 1 - h**2  # what Tanh sends back
    out = io.StringIO()
    with trace(out):
        loss.backward()
    expected = [
        f"  1 Sum.backward: grad () norm 1 -> (4, 3) norm {np.sqrt(12):.6g}",
        f"  2 Tanh.backward: grad (4, 3) norm {np.sqrt(12):.6g} -> (4, 3) norm {np.linalg.norm(g_h):.6g}",
        f"  3 MatMul.backward: grad (4, 3) norm {np.linalg.norm(g_h):.6g} -> "
        f"(4, 2) norm {np.linalg.norm(g_h @ w.data.T):.6g}, (2, 3) norm {np.linalg.norm(x.data.T @ g_h):.6g}",
    ]
    assert out.getvalue().splitlines() == expected


def test_trace_with_values_prints_the_gradients_themselves():
    a = ts.Tensor(np.array([1.0, -2.0]), requires_grad=True)
    out = io.StringIO()
    with trace(out, values=True):
        (a * np.array([3.0, 0.5])).sum().backward()
    assert out.getvalue().splitlines() == [
        "  1 Sum.backward: grad 1.0000 -> [1.0000, 1.0000]",
        "  2 Mul.backward: grad [1.0000, 1.0000] -> [3.0000, 0.5000], [1.0000, -2.0000]"]
    out = io.StringIO()
    with trace(out, values=True):  # a matrix stays on one line
        ts.Tensor(np.zeros((2, 2)), requires_grad=True).sum().backward()
    assert out.getvalue() == "  1 Sum.backward: grad 1.0000 -> [[1.0000, 1.0000], [1.0000, 1.0000]]\n"


def test_trace_says_none_for_an_input_that_needs_no_gradient(capsys):
    image = ts.Tensor(np.ones((1, 1, 3, 3)))
    kernel = ts.Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    y = conv2d(image, kernel).sum()
    with trace():  # standard output by default
        y.backward()
    lines = capsys.readouterr().out.splitlines()
    # each of the 4 weights meets 4 windows of ones: gradient 4 each, norm 8; the image gets none
    assert lines[1] == "  2 Conv2dIm2colOp.backward: grad (1, 1, 2, 2) norm 2 -> none, (1, 1, 2, 2) norm 8"


def test_trace_stops_at_the_end_of_its_block(capsys):
    x, w, loss = small_graph()
    with trace():
        pass
    loss.backward()
    assert capsys.readouterr().out == "" and tensor._observers == []


# ----- the observer hook ----------------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.calls = []

    def forward(self, fn, inputs, output):
        self.calls.append(("forward", type(fn).__name__, [x.shape for x in inputs], output.shape))

    def backward(self, fn, grad_output, input_grads):
        self.calls.append(("backward", type(fn).__name__, grad_output.shape, [g.shape for g in input_grads]))


def test_observers_see_every_forward_and_backward_call_and_leave_with_their_block():
    recorder = Recorder()
    with tensor.observing(recorder):
        x, w, loss = small_graph()
        loss.backward()
    assert recorder.calls == [
        ("forward", "MatMul", [(4, 2), (2, 3)], (4, 3)), ("forward", "Tanh", [(4, 3)], (4, 3)),
        ("forward", "Sum", [(4, 3)], ()), ("backward", "Sum", (), [(4, 3)]),
        ("backward", "Tanh", (4, 3), [(4, 3)]), ("backward", "MatMul", (4, 3), [(4, 2), (2, 3)])]
    assert tensor._observers == []


# ----- anomaly detection -----------------------------------------------------------------------------
def test_anomaly_in_forward_names_the_op_that_made_it():
    x = ts.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"), detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"^Log produced Inf in its forward pass, from inputs holding "
                                                     r"none; input shapes \(2, 2\), output shape \(2, 2\)$"):
            ((x - 1.0) * 0.5).log() * 0.0  # log(0) = -inf; the Mul after it would make NaN: Log is named
        with pytest.raises(FloatingPointError, match=r"^Sqrt produced NaN in its forward pass"):
            (x - 2.0).sqrt()
    assert tensor._observers == []


def test_anomaly_in_backward_names_the_op_that_made_it():
    x = ts.Tensor(np.array([0.0, 4.0]), requires_grad=True)
    y = (x.sqrt() * 3.0).sum()  # finite forward; d sqrt(x)/dx = 1 / (2 sqrt x) is infinite at 0
    with np.errstate(divide="ignore"), detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"^Sqrt produced Inf in its backward pass: the gradient for "
                                                     r"input 0 \(shape \(2,\)\) holds it, the gradient from above "
                                                     r"\(shape \(2,\)\) does not; input shapes \(2,\)$"):
            y.backward()
    assert x.grad is None


def test_anomaly_mode_does_not_blame_values_that_arrive_non_finite():
    mask = ts.Tensor(np.array([-np.inf, 0.0]))  # an infinite mask, as attention and softmax use
    x = ts.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with np.errstate(invalid="ignore"), detect_anomaly():
        (x + mask).exp().sum().backward()  # exp(-inf) = 0: Inf goes in, nothing new comes out
        np.testing.assert_array_equal(x.grad, [0.0, np.exp(2.0)])
        with pytest.raises(FloatingPointError, match="^Mul produced NaN in its forward pass"):
            mask * 0.0  # -inf * 0 = NaN: a kind of value the inputs did not hold


def test_anomaly_mode_is_silent_on_a_finite_graph_and_changes_nothing():
    def gradients():
        x, w, loss = small_graph()
        loss.backward()
        return loss.item(), w.grad

    plain = gradients()
    with detect_anomaly():
        checked = gradients()
    assert checked[0] == plain[0]
    np.testing.assert_array_equal(checked[1], plain[1])
