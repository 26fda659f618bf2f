"""Lists the README repeats in prose are the code's lists (they drifted before)."""
import re
from pathlib import Path

from iwsi.config import FIELDS, PLACEMENT
from iwsi.filtering import METHODS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def listed(after: str) -> list[str]:
    """The comma-separated names in the first `...` span after `after`."""
    span = re.search(re.escape(after) + r"[^`]*`([^`]*)`", README, re.S).group(1)
    return [name.strip() for name in span.replace("\n", " ").split(",")]


def test_the_readme_lists_every_config_key_but_the_placement_ones():
    assert listed("Config keys (YAML or `--set`):") == [k for k in FIELDS if k not in PLACEMENT]


def test_the_readme_lists_every_method():
    assert listed("Methods (`iwsi/filtering.py: METHODS`, one table):") == list(METHODS)
