"""Files that ship with specc: the grammar, the IR schema, the embedded data."""
from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


@cache
def grammar_dir() -> Path:
    """The folder holding specc.lark and the IR schema.

    Installed, it is the package `specc.grammar` (the wheel maps the top-level
    `grammar/` folder there); in a source checkout it is `grammar/` itself.
    """
    installed = Path(str(resources.files("specc"))) / "grammar"
    if (installed / "specc.lark").is_file():
        return installed
    return Path(__file__).resolve().parent.parent / "grammar"


def grammar_text(name: str) -> str:
    return (grammar_dir() / name).read_text(encoding="utf-8")
