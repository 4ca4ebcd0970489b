"""docs/tour.md runs as written: its Python blocks in order, each followed by the output it prints."""
import contextlib
import io
import re
from pathlib import Path

import numpy as np

TOUR = Path(__file__).resolve().parents[1] / "docs" / "tour.md"


def blocks(markdown):
    """(language, text) of every fenced block, in order."""
    return re.findall(r"^```(\w+)\n(.*?)^```$", markdown, re.M | re.S)


def test_every_block_runs_and_prints_what_the_tour_shows():
    found = blocks(TOUR.read_text())
    namespace, checked = {}, 0
    with np.printoptions():  # the tour sets NumPy's print options: restore them afterwards
        for k, (language, code) in enumerate(found):
            if language != "python":
                continue
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{TOUR.name} block {k}", "exec"), namespace)
            shown = found[k + 1][1] if k + 1 < len(found) and found[k + 1][0] == "text" else ""
            assert printed.getvalue() == shown, f"block {k} printed:\n{printed.getvalue()}\nthe tour shows:\n{shown}"
            checked += bool(shown)
    assert checked == 5  # forward, trace, branches, finite differences, gradcheck
