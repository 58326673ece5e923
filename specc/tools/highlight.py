"""Syntax highlighting generated from grammar/specc.lark: a Pygments lexer and a TextMate grammar.

Both are built from the grammar's own terminals (their regular expressions, its keywords and
punctuation), so they cannot drift from it: a terminal without a role here fails generation and
the tests. `python -m specc.tools.highlight` prints the TextMate grammar that
editors/specc.tmLanguage.json holds.
"""
from __future__ import annotations

import json
import re
from functools import cache

from pygments.lexer import RegexLexer
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace

from specc import layers
from specc.tools.text import grammar

# What each of the grammar's regular-expression terminals is, for Pygments and for TextMate.
_ROLES = {
    "COMMENT": (Comment.Single, "comment.line.number-sign.specc"),
    "WS": (Whitespace, None),
    "STRING": (String, "string.quoted.specc"),
    "SHAPE": (Number.Integer, "constant.numeric.shape.specc"),
    "FLOAT": (Number.Float, "constant.numeric.float.specc"),
    "INT": (Number.Integer, "constant.numeric.integer.specc"),
    "SIGN": (Operator, "keyword.operator.sign.specc"),
    "NAME": (Name, "variable.other.specc"),
}
_OPERATORS = {"->", "=", "*"}  # the other punctuation of the grammar is punctuation


@cache
def _terminals() -> list[tuple[str, str, str]]:
    """(name, regex, kind) of every terminal, in the order a lexer must try them: comments and strings
    first, then keywords, numbers by the grammar's priority, punctuation longest first, names last.
    kind: 'keyword', 'operator', 'punctuation', or the terminal's name (a role in _ROLES)."""
    out = []
    for t in grammar().terminals:
        if t.pattern.type == "str":
            word = t.pattern.value
            kind = "keyword" if word.isalpha() else "operator" if word in _OPERATORS else "punctuation"
            regex = rf"\b{re.escape(word)}\b" if word.isalpha() else re.escape(word)
            out.append((t.name, regex, kind, t.priority, len(word)))
        else:
            if t.name not in _ROLES:
                raise KeyError(f"grammar terminal {t.name} has no highlighting role in specc/tools/highlight.py")
            out.append((t.name, t.pattern.to_regexp(), t.name, t.priority, 0))
    rank = {"COMMENT": 0, "WS": 1, "STRING": 2, "keyword": 3, "SHAPE": 4, "FLOAT": 5, "INT": 6,
            "operator": 7, "punctuation": 8, "SIGN": 9, "NAME": 10}
    out.sort(key=lambda x: (rank[x[2]], -x[3], -x[4]))
    return [(name, regex, kind) for name, regex, kind, _, _ in out]


def _layer_names() -> str:
    return "|".join(sorted(layers.names(), key=lambda n: (-len(n), n)))


def _pygments_rules() -> list:
    rules: list = []
    for name, regex, kind in _terminals():
        if kind == "NAME":
            rules.append((rf"\b({_layer_names()})\b", Name.Class))  # the layers of the registry
            rules.append((rf"{regex}(?=\s*=(?!>))", Name.Attribute))  # keyword arguments and settings
            rules.append((regex, Name))
        elif kind == "keyword":
            rules.append((regex, Keyword))
        elif kind in ("operator", "punctuation"):
            rules.append((regex, Operator if kind == "operator" else Punctuation))
        else:
            rules.append((regex, _ROLES[kind][0]))
    return rules


class SpeccLexer(RegexLexer):
    """Pygments lexer for specc's .net files (registered as `specc`; rich highlights with it)."""

    name = "specc"
    aliases = ["specc", "specc-net"]
    filenames = ["*.net"]
    mimetypes = ["text/x-specc"]
    tokens = {"root": _pygments_rules() + [(r"\n", Text)]}


def textmate_grammar() -> dict:
    """The TextMate grammar (VS Code and others) of .net files, from the same terminals."""
    repository: dict[str, dict] = {}
    for name, regex, kind in _terminals():
        if kind == "NAME":
            repository["layer"] = {"match": rf"\b({_layer_names()})\b", "name": "support.class.layer.specc"}
            repository["argument"] = {"match": rf"{regex}(?=\s*=(?!>))", "name": "variable.parameter.specc"}
            repository["name"] = {"match": regex, "name": _ROLES["NAME"][1]}
        elif kind == "keyword":
            repository[f"keyword-{name.lower()}"] = {"match": regex, "name": "keyword.control.specc"}
        elif kind == "operator":
            repository[f"operator-{name.lower()}"] = {"match": regex, "name": "keyword.operator.specc"}
        elif kind == "punctuation":
            repository[f"punctuation-{name.lower()}"] = {"match": regex, "name": "punctuation.specc"}
        elif _ROLES[kind][1] is not None:
            repository[name.lower()] = {"match": regex, "name": _ROLES[kind][1]}
    return {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "specc",
        "scopeName": "source.specc",
        "fileTypes": ["net"],
        "comment": "generated from grammar/specc.lark by `python -m specc.tools.highlight`; do not edit",
        "patterns": [{"include": f"#{key}"} for key in repository],
        "repository": repository,
    }


def textmate_json() -> str:
    return json.dumps(textmate_grammar(), indent=2) + "\n"


if __name__ == "__main__":
    print(textmate_json(), end="")
