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


def test_the_readme_files_section_names_every_top_level_folder():
    """One line per folder (and the app); docs/architecture.md names every module (the test below)."""
    root = Path(__file__).resolve().parent.parent
    block = README[README.index("## Files"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    named = set(re.findall(r"^(\S+)", block, re.M))
    tracked = {p.name + "/" for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
               and p.name not in ("cache", "shared") and not p.name.endswith(".egg-info")
               and any(f.suffix in (".py", ".md", ".yaml") for f in p.rglob("*"))}
    assert named == tracked | {"app.py"}


def test_the_architecture_page_names_every_module():
    root = Path(__file__).resolve().parent.parent
    page = (root / "docs" / "architecture.md").read_text()
    table = page[page.index("## Modules"):page.index("## The contract")]
    named = set(re.findall(r"`([a-z_]+/?)`", table))
    modules = {p.stem for p in (root / "iwsi").glob("*.py") if p.name != "__init__.py"}
    modules |= {p.name + "/" for p in (root / "iwsi").iterdir() if (p / "__init__.py").exists()}
    assert modules - named == set(), "docs/architecture.md's Modules table misses these"
