"""Save a screenshot of every dashboard page to docs/screenshots/<page>.png (fixture runs, headless Chromium).

    PYTHONPATH=. .venv/bin/python tests/screenshots.py [OUT_DIR]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import REPO, chromium, make_cache, streamlit_server, visit_all  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots"
    with tempfile.TemporaryDirectory() as tmp:
        cache = make_cache(Path(tmp) / "cache")
        with streamlit_server(cache) as url, chromium(Path(tmp) / "profile") as driver:
            problems = visit_all(driver, url, out)
    print(f"screenshots in {out}; problems: {problems or 'none'}")
