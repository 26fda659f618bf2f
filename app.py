"""IWSI dashboard router: sidebar run picker + k slider shared by every page, then the page.

Reads run directories under $IWSI_CACHE/runs (default <repo>/cache/runs); pages are read-only
except the labels of the Rationales page. Run it with:

    streamlit run app.py          # serves on 127.0.0.1 (see .streamlit/config.toml)
"""
from __future__ import annotations

import streamlit as st

from iwsi.runs import list_run_names, read_json, run_path, runs_dir

PAGES = [
    st.Page("pages/runs.py", title="Runs", icon=":material/play_circle:", default=True),
    st.Page("pages/ds_weights.py", title="DS weights", icon=":material/bar_chart:"),
    st.Page("pages/percentiles.py", title="Percentiles", icon=":material/show_chart:"),
    st.Page("pages/correctness.py", title="Correctness vs DSE", icon=":material/rule:"),
    st.Page("pages/distributions.py", title="Distributions & embeddings", icon=":material/scatter_plot:"),
    st.Page("pages/rationales.py", title="Rationales", icon=":material/notes:"),
    st.Page("pages/ablations.py", title="Ablations", icon=":material/table_chart:"),
]


def sidebar() -> None:
    """Run picker and k slider; their keys live in st.session_state for every page."""
    names = list_run_names()
    if "select_run" in st.session_state:  # a page asked to switch run (e.g. after a launch)
        st.session_state["run"] = st.session_state.pop("select_run")
    if st.session_state.get("run") not in names:
        st.session_state.pop("run", None)
    with st.sidebar:
        st.markdown("### IWSI dashboard")
        if not names:
            st.caption(f"No runs in `{runs_dir()}` yet.")
            st.session_state["run_path"] = None
        else:
            name = st.selectbox("Run", names, key="run", help="run directories under cache/runs, newest first")
            st.session_state["run_path"] = run_path(name)
        k_default = (read_json(st.session_state["run_path"] / "metrics.json") or {}).get("k", 80) if names else 80
        st.session_state.setdefault("k", int(round(float(k_default))))
        st.slider("k — % of majority samples kept", 1, 100, key="k",
                  help="keep the k % of D_c with the lowest DS weight; used by every page")


st.set_page_config(page_title="IWSI dashboard", page_icon=":material/balance:", layout="wide")
page = st.navigation(PAGES)
sidebar()
page.run()
