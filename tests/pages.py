"""Opening a dashboard page in streamlit's AppTest, as the page tests do."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_page(page: str) -> AppTest:
    """`page` (e.g. "views/ds_weights.py") opened through app.py, which draws the shared sidebar; no exception."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
