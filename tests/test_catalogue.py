"""The gradient-check catalogue: complete, all green, and able to go red."""
import inspect
import math

import numpy as np
import pytest

import tinysiam.app.catalogue as catalogue
from tinysiam import gpu_available, nn, ops, siamese
from tinysiam.app.catalogue import Check, all_checks, format_table, main, run_checks
from tinysiam.engine import conv, conv1d, embedding, fftconv, winograd
from tinysiam.engine.tensor import Function, Tensor
from tinysiam.nn import batchnorm, layers
from tinysiam.siamese import distances, losses, text

# where the engine's Function classes live
FUNCTION_MODULES = (ops, conv, winograd, fftconv, conv1d, embedding, distances, losses, batchnorm, layers)
MODULE_MODULES = (layers, batchnorm, siamese, text)  # where its public Modules live


def classes_defined_in(module, base):
    """Concrete subclasses of ``base`` defined in ``module`` (no private names, no classes with subclasses)."""
    return {obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__ == module.__name__
            and not obj.__name__.startswith("_") and not obj.__subclasses__()}


def functions_used_by(check):
    """The Function classes in the graph that ``check.fn`` builds."""
    inputs = [Tensor(x, requires_grad=x.dtype.kind == "f") for x in check.inputs]
    used, stack, seen = set(), [check.fn(*inputs)], set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen or tensor.creator is None:
            continue
        seen.add(id(tensor))
        used.add(type(tensor.creator))
        stack.extend(tensor.creator.inputs)
    return used


def test_ops_catalogue_passes_and_lists_every_op_by_name():
    rows = run_checks(all_checks(groups="op"))
    failed = [f"{r['name']}: {r['message']}" for r in rows if not r["passed"]]
    assert not failed, "\n".join(failed)
    table = format_table(rows)
    first_words = {line.split()[0] for line in table.splitlines()[2:len(rows) + 2]}
    op_names = {cls.__name__.lower() for cls in classes_defined_in(ops, Function)}
    assert len(op_names) >= 24
    missing = op_names - first_words
    assert not missing, f"ops without a catalogue entry named after them: {sorted(missing)}"
    assert table.endswith(f"\n{len(rows)} passed, 0 failed")


def test_whole_catalogue_passes():
    rows = run_checks(all_checks())
    assert {r["group"] for r in rows} == set(catalogue.GROUPS)
    failed = [f"{r['name']}: {r['message']}" for r in rows if not r["passed"]]
    assert not failed, "\n".join(failed)


def test_every_function_class_is_exercised_by_some_check():
    used = set().union(*(functions_used_by(check) for check in all_checks()))
    defined = set().union(*(classes_defined_in(m, Function) for m in FUNCTION_MODULES))
    missing = sorted(cls.__qualname__ for cls in defined - used)
    assert not missing, f"Function classes no catalogue entry goes through: {missing}"


def test_every_public_module_class_has_an_entry_named_after_it():
    names = " ".join(c.name for c in all_checks(groups=("layer", "head", "network")))
    defined = set().union(*(classes_defined_in(m, nn.Module) for m in MODULE_MODULES))
    missing = sorted(cls.__name__ for cls in defined if cls.__name__ not in names)
    assert not missing, f"Module classes without a catalogue entry: {missing}"


def test_a_wrong_backward_turns_its_rows_red(monkeypatch):
    monkeypatch.setattr(ops.Tanh, "backward", lambda self, g: g * (1 - self.out))  # drops a factor of tanh
    rows = run_checks(all_checks(groups="op", seed=1))
    failed = {r["name"] for r in rows if not r["passed"]}
    assert failed == {"tanh", "tanh saturated +-30"}
    assert "MISMATCH" in next(r["message"] for r in rows if r["name"] == "tanh")


def test_a_crashing_check_is_a_failed_row():
    def broken(*tensors):
        raise ArithmeticError("deliberately broken")

    row, = run_checks([Check("broken", "op", broken, [np.ones(2), np.arange(3)])])
    assert row["shapes"] == "(2,) (3,)" and not row["passed"] and math.isnan(row["max_rel_error"])
    assert row["message"] == "ArithmeticError: deliberately broken"
    assert "broken" in format_table([row]) and "0 passed, 1 failed" in format_table([row])


def test_table_columns_are_aligned():
    rows = run_checks(all_checks(groups="op")[:5])
    lines = format_table(rows).splitlines()
    column = lines[0].index("max rel err")
    assert all(line[column - 2:column] == "  " and line.endswith("PASS") for line in lines[2:7])
    assert len({len(line) for line in lines[2:7]}) == 1


def test_groups_and_seeds():
    losses_only = all_checks(groups="loss")
    assert losses_only and {c.group for c in losses_only} == {"loss"}
    assert len(all_checks(groups=["op", "loss"])) == len(all_checks(groups="op")) + len(losses_only)
    with pytest.raises(ValueError, match="unknown group.*'ops'"):
        all_checks(groups="ops")
    same, again, other = (all_checks(seed, "op")[0].inputs[0] for seed in (0, 0, 1))
    np.testing.assert_array_equal(same, again)
    assert not np.array_equal(same, other)


@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not gpu_available(), reason="CuPy with a CUDA device is not available"))])
def test_runs_on_each_device(device):
    def probe(x, labels):
        assert x.device == labels.device == device, f"inputs on {x.device} and {labels.device}"
        return x * 2.0

    probe_check = Check("inputs on the device", "op", probe, [np.ones(2), np.arange(2)])
    rows = run_checks(all_checks(groups="op") + [probe_check], device=device)
    failed = [f"{r['name']}: {r['message']}" for r in rows if not r["passed"]]
    assert not failed, "\n".join(failed)


def test_main_fails_when_a_check_fails(monkeypatch, capsys):
    class WrongGrad(Function):
        def forward(self, x):
            return x * 0

        def backward(self, g):  # wrong on purpose: the slope of x * 0 is 0
            return g

    wrong = Check("deliberately wrong", "op", lambda x: WrongGrad()(x), [np.ones(3)])
    monkeypatch.setattr(catalogue, "all_checks", lambda seed, groups: all_checks(seed, "op")[:2] + [wrong])
    assert main([]) == 1
    out = capsys.readouterr().out
    assert "FAILED deliberately wrong" in out and out.endswith("2 passed, 1 failed\n")


def test_main_options(capsys):
    assert main(["--group", "op", "-k", "TANH", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "tanh saturated" in out and "sigmoid" not in out and "2 passed, 0 failed" in out
    assert main(["-k", "no such check"]) == 2
    assert "no check matches" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--group", "nonsense"])


@pytest.mark.skipif(gpu_available(), reason="needs a machine without a usable GPU")
def test_main_refuses_an_unusable_gpu(capsys):
    assert main(["--device", "gpu"]) == 2
    assert "device='gpu' requested" in capsys.readouterr().err
