"""The README's configuration table is the documentation of the settings: it must not drift from them."""

from __future__ import annotations

import re
from pathlib import Path

from switchboard.settings import Settings

README = Path(__file__).parent.parent / "README.md"


def _table() -> dict[str, str]:
    rows = re.findall(r"^\| `(SWITCHBOARD_[A-Z_]+)` \| ([^|]+) \|", README.read_text(), re.M)
    return {name: default.strip() for name, default in rows}


def test_readme_documents_every_setting_with_its_default() -> None:
    table = _table()
    fields = Settings.model_fields
    assert set(table) == {f"SWITCHBOARD_{name.upper()}" for name in fields}
    for name, field in fields.items():
        shown = table[f"SWITCHBOARD_{name.upper()}"]
        default = field.default
        if default is None:
            assert shown == "*(unset)*", name
        else:
            value = str(default).lower() if isinstance(default, bool) else str(default)
            assert shown.strip("`").removeprefix("./") == value.removeprefix("./"), name


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
