"""What the documents show still runs: every Python import and ``tinysiam.*`` name, and every ``tinysiam`` command line
shown in README.md and the documents parses with today's code."""
import ast
import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from tinysiam.app.catalogue import build_parser as gradcheck_parser
from tinysiam.app.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md",
             ROOT / "results" / "README.md"]
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)


def read(path):
    return path.read_text(encoding="utf-8")


def command_lines(text):
    """(shown in a code block?, the line) of every ``tinysiam ...`` command line, continuations joined, comments cut."""
    found = []
    for _, body in FENCE.findall(text):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("tinysiam "):
                found.append((True, line))
    for span in re.findall(r"`(tinysiam [^`]*)`", FENCE.sub("", text)):
        found.append((False, " ".join(span.split())))
    return found


def python_blocks(text):
    return [body for lang, body in FENCE.findall(text) if lang == "python"]


class ParseProblem(Exception):
    pass


def parse(line, complete):
    """Parse a command line with the parser of its command; a shortened mention (``complete`` False, e.g. in running
    text) may leave out required arguments, but every option and value it shows must be right."""
    words = shlex.split(line, comments=True)[1:]
    if words and words[0] == "bench":
        spec = importlib.util.spec_from_file_location("docs_bench_harness", ROOT / "benchmarks" / "harness.py")
        harness = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(harness)
        parsers = [harness.build_parser()]
        words = words[1:]
    elif words and words[0] == "gradcheck":
        parsers, words = [gradcheck_parser()], words[1:]
    else:
        parsers = [build_parser()]
    parser = parsers[0]

    def error(message):
        raise ParseProblem(message)

    for p in [parser, *(a.choices[c] for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)
                        for c in a.choices)]:
        p.error = error
    try:
        parser.parse_args(words)
    except ParseProblem as problem:
        if complete or "the following arguments are required" not in str(problem):
            raise
    except SystemExit as exit:  # --help
        assert exit.code == 0


SHOWN = [(doc.relative_to(ROOT), complete, line) for doc in DOCUMENTS for complete, line in command_lines(read(doc))]


def test_the_documents_show_command_lines():
    assert len(SHOWN) > 30 and {str(doc) for doc, _, _ in SHOWN} >= {"README.md", "docs/applications.md"}


@pytest.mark.parametrize("doc, complete, line", SHOWN, ids=[f"{doc}: {line[:60]}" for doc, _, line in SHOWN])
def test_every_command_line_shown_parses(doc, complete, line):
    try:
        parse(line, complete)
    except ParseProblem as problem:
        pytest.fail(f"{doc} shows `{line}`, which tinysiam refuses: {problem}")


IMPORTS = [(doc.relative_to(ROOT), node) for doc in DOCUMENTS for block in python_blocks(read(doc))
           for node in ast.walk(ast.parse(block)) if isinstance(node, (ast.Import, ast.ImportFrom))]


@pytest.mark.parametrize("doc, node", IMPORTS, ids=[f"{doc}: {ast.unparse(node)}" for doc, node in IMPORTS])
def test_every_import_shown_imports(doc, node):
    if isinstance(node, ast.Import):
        for alias in node.names:
            importlib.import_module(alias.name)
    else:
        module = importlib.import_module(node.module)
        missing = [alias.name for alias in node.names if not hasattr(module, alias.name)
                   and importlib.util.find_spec(f"{node.module}.{alias.name}") is None]
        assert not missing, f"{doc}: `{ast.unparse(node)}`: {node.module} has no {missing}"


NAMES = sorted({(str(doc.relative_to(ROOT)), name) for doc in DOCUMENTS
                for name in re.findall(r"`(tinysiam(?:\.\w+)+)", read(doc))})


@pytest.mark.parametrize("doc, name", NAMES, ids=[f"{doc}: {name}" for doc, name in NAMES])
def test_every_tinysiam_name_shown_exists(doc, name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
        try:
            value = importlib.import_module(".".join(parts[:cut]))
            break
        except ModuleNotFoundError:
            continue
    for attribute in parts[cut:]:
        assert hasattr(value, attribute), f"{doc} names {name}, but {'.'.join(parts[:cut])} has no {attribute}"
        value = getattr(value, attribute)
