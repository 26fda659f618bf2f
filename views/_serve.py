"""`python app.py [streamlit options]`: start the dashboard with the pages' libraries already imported.

`streamlit run app.py` imports pandas, pyarrow, plotly, scipy and iwsi's modules only when the first
browser tab runs a page, so the first visitor waits ~1–2 s for them on a small CPU (docs/benchmarks.md,
"2026-12-02: the warm launcher"). Here the server process imports them before it serves, then runs `streamlit run`;
the import lines are read from the pages themselves, so a page's new import is warmed without a list here.
What the warm-up leaves in memory is then frozen (gc.freeze), so Python's full collections skip it.
"""
from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import sys
from pathlib import Path

VIEWS = Path(__file__).resolve().parent
# Imported lazily inside functions the pages call (confidence intervals, figure export).
LAZY = ["scipy.stats", "plotly.io"]
# Not the pages' own helpers (views/): their st.cache_data decorators warn when no Streamlit runtime exists yet.
SKIP = {"__future__", VIEWS.name}


def page_imports() -> list[str]:
    """Absolute module names imported at the top level of app.py and views/*.py, views/ itself excepted."""
    names: list[str] = []
    for path in [VIEWS.parent / "app.py", *sorted(VIEWS.glob("*.py"))]:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] not in SKIP:
                names += [node.module] + [f"{node.module}.{a.name}" for a in node.names
                                          if _is_module(f"{node.module}.{a.name}")]  # from iwsi import charts
    return [n for n in dict.fromkeys(names + LAZY) if n.split(".")[0] not in SKIP]


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package: `name` is a function or class
        return False


def warm() -> None:
    """Import what the pages import, build plotly's validators, then freeze what that left in memory."""
    for name in page_imports():
        importlib.import_module(name)
    # plotly builds its property validators on a trace type's first use: ~0.25 s of the first chart page
    go = importlib.import_module("plotly.graph_objects")
    go.Figure([go.Bar(x=[0], y=[0]), go.Scatter(x=[0], y=[0]), go.Scattergl(x=[0], y=[0])]).to_dict()
    # The ~170,000 objects of these imports live as long as the server. Frozen, Python's full (generation-2)
    # collections skip them: 29 ms instead of 95-209 ms each during `iwsi bench app`, where one landing in a
    # k-slider step made it ~0.3 s slower (docs/benchmarks.md, 2026-12-04 Zen 3).
    gc.collect()
    gc.freeze()


def serve(argv: list[str]) -> int:
    warm()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(VIEWS.parent / "app.py"), *argv]
    return cli.main()
