"""The prelude: the built-in element-wise layers and Affine written as expressions (grammar/prelude.net)."""
from __future__ import annotations

from functools import cache

from specc import syntax as s
from specc.resources import grammar_text
from specc.source import Source

PRELUDE = "prelude.net"


@cache
def source() -> Source:
    return Source(PRELUDE, grammar_text(PRELUDE))


@cache
def definitions() -> dict[str, s.LayerDef]:
    from specc.parse import parse
    return {x.name: x for x in parse(source()).statements if isinstance(x, s.LayerDef)}


def names() -> list[str]:
    return list(definitions())
