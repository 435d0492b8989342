"""The README states the two commands and lists exactly the exhibits the package produces."""

import re

import yaml

from analysis import paths
from analysis.models.table_config import TABLES


def test_readme_commands():
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    assert "make all" in text and "make test" in text


def test_readme_exhibit_list_matches_configs():
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `((?:fig|tab)\d\d_[a-z0-9_]+)`", text, flags=re.M))
    exhibits = set(yaml.safe_load((paths.CONFIGS / "exhibits.yaml").read_text(encoding="utf-8"))["exhibits"])
    tables = {t.name for t in TABLES}
    from analysis.multiverse.__main__ import FIGURE_STEM
    from analysis.power import TABLE_STEM
    assert listed == exhibits | tables | {FIGURE_STEM, TABLE_STEM}
