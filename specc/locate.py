"""Where an IR path (("layers", 2, "args", "kernel")) sits in the file the user wrote."""
from __future__ import annotations

import json
from functools import cache
from typing import Any, Callable

from lark import Lark, Token

from specc.errors import IRPath
from specc.resources import grammar_text
from specc.source import Span

Locator = Callable[[IRPath], "Span | None"]


def ir_locator(doc: Any) -> Locator:
    """For a .net file: the spans that lowering recorded in the IR itself."""

    def locate(path: IRPath) -> Span | None:
        node, best = doc, None
        for i, key in enumerate(path):
            if not isinstance(node, (dict, list)):
                break
            if isinstance(node, dict):
                best = _span(node.get("span")) or best
                if key == "args" and i + 1 < len(path):
                    arg = _span((node.get("arg_spans") or {}).get(path[i + 1]))
                    if arg:
                        return arg
                best = _span((node.get("key_spans") or {}).get(key)) or best
                node = node.get(key)
            else:
                node = node[key] if isinstance(key, int) and 0 <= key < len(node) else None
        if isinstance(node, dict):
            best = _span(node.get("span")) or best
        return best

    return locate


def _span(d: Any) -> Span | None:
    try:
        return Span.from_json(d) if d else None
    except (KeyError, TypeError):
        return None


@cache
def _json_parser() -> Lark:
    return Lark(grammar_text("json.lark"), start="value", parser="lalr", propagate_positions=True)


def json_locator(text: str) -> Locator:
    """For a .json IR file: the position of each value in the JSON text (computed on first use)."""
    table: dict[IRPath, Span] = {}

    def walk(node: Any, path: IRPath) -> None:
        if isinstance(node, Token):
            # lark types a Token's positions Optional (a hand-made Token has none); a parsed one has them all
            table[path] = Span(node.line, node.column, node.end_line, node.end_column)  # type: ignore[arg-type]
            return
        table[path] = Span(node.meta.line, node.meta.column, node.meta.end_line, node.meta.end_column)
        if node.data == "object":
            for pair in node.children:
                if pair is not None:
                    key, value = pair.children
                    walk(value, path + (json.loads(key),))
                    # A member is shown as `"key": value`, as a .net file shows `key=value`: an
                    # unknown key is marked at its name, not only at its value.
                    table[path + (json.loads(key),)] = Span(pair.meta.line, pair.meta.column,
                                                            pair.meta.end_line, pair.meta.end_column)
        else:
            for i, item in enumerate(c for c in node.children if c is not None):
                walk(item, path + (i,))

    def locate(path: IRPath) -> Span | None:
        if not table:
            try:
                walk(_json_parser().parse(text), ())
            except Exception:  # positions are a nicety; json.loads already accepted the text
                return None
        for n in range(len(path), -1, -1):
            if path[:n] in table:
                return table[path[:n]]
        return None

    return locate


