"""IWSI dashboard router: page config, the shared sidebar (run picker and k) and navigation.

The sidebar's widgets live here, in the entrypoint, which runs before every page: Streamlit keeps
the state of widgets drawn by the entrypoint across page switches (a widget drawn by a page would be
reset on every other page). Pages read the values from `st.session_state["run"]` and `["k"]`.

Pages live in views/, not pages/: with a pages/ folder next to app.py, Streamlit falls back to its
old folder-based navigation and runs a page URL's script without this router.

Reads run directories under $IWSI_CACHE/runs (default <repo>/cache/runs); pages are read-only
except the labels of the Rationales page. Run it with:

    python app.py                 # = make app: imports the pages' libraries first (views/_serve.py), then
                                  # serves on 127.0.0.1 (see .streamlit/config.toml); takes streamlit's options
    streamlit run app.py          # the same, without the warm-up: the first visitor waits for the imports
"""
from __future__ import annotations

import sys

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

# `python app.py` (no script-run context), not Streamlit running this file as a page script
if __name__ == "__main__" and get_script_run_ctx(suppress_warning=True) is None:
    from views._serve import serve

    sys.exit(serve(sys.argv[1:]))

from views._shared import sidebar  # noqa: E402

PAGES = [
    st.Page("views/runs.py", title="Runs", icon=":material/play_circle:", default=True),
    st.Page("views/ds_weights.py", title="DS weights", icon=":material/bar_chart:"),
    st.Page("views/percentiles.py", title="Percentiles", icon=":material/show_chart:"),
    st.Page("views/correctness.py", title="Correctness vs DSE", icon=":material/rule:"),
    st.Page("views/distributions.py", title="Distributions & embeddings", icon=":material/scatter_plot:"),
    st.Page("views/rationales.py", title="Rationales", icon=":material/notes:"),
    st.Page("views/explorer.py", title="Samples explorer", icon=":material/manage_search:"),
    st.Page("views/queue.py", title="Label queue", icon=":material/label:"),
    st.Page("views/compare.py", title="Compare runs", icon=":material/compare_arrows:"),
    st.Page("views/ablations.py", title="Ablations", icon=":material/table_chart:"),
    st.Page("views/probe.py", title="Probe", icon=":material/biotech:"),
]

st.set_page_config(page_title="IWSI dashboard", page_icon=":material/balance:", layout="wide")
navigation = st.navigation(PAGES)
sidebar()
navigation.run()
