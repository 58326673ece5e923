"""The Pygments lexer and the TextMate grammar agree with grammar/specc.lark (they are generated from it)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import ROOT
from lark.exceptions import UnexpectedInput
from pygments import lex
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import Error, Keyword, Name
from rich.console import Console
from rich.syntax import Syntax

from specc.errors import SpeccError
from specc.reading import read_source
from specc.tools.highlight import SpeccLexer, textmate_grammar, textmate_json
from specc.tools.text import grammar, tokens

FILES = sorted((ROOT / "models").glob("*.net")) + sorted((ROOT / "tests" / "golden").glob("*.net"))


def _text(path: Path) -> str | None:
    try:
        return read_source(path).text
    except SpeccError:  # binary or not UTF-8: nothing to highlight
        return None


def test_the_committed_textmate_grammar_is_the_generated_one():
    committed = (ROOT / "editors" / "specc.tmLanguage.json").read_text(encoding="utf-8")
    assert committed == textmate_json(), "run `python -m specc.tools.highlight > editors/specc.tmLanguage.json`"


def test_every_terminal_of_the_grammar_is_covered():
    tm = json.dumps(textmate_grammar())
    rules = [r[0] for r in SpeccLexer.tokens["root"]]
    for t in grammar().terminals:
        regex = re.escape(t.pattern.value) if t.pattern.type == "str" else t.pattern.to_regexp()
        if t.pattern.type == "str" and t.pattern.value.isalpha():
            regex = rf"\b{regex}\b"
        assert any(regex in r for r in rules), f"{t.name} missing from the Pygments lexer"
        if t.name != "WS":
            assert json.dumps(regex)[1:-1] in tm, f"{t.name} missing from the TextMate grammar"
    keywords = {t.pattern.value for t in grammar().terminals if t.pattern.type == "str" and t.pattern.value.isalpha()}
    # (the graph statements add let and output; expression layers, layer and param)
    assert keywords == {"input", "block", "train", "let", "output", "layer", "param"}


@pytest.mark.parametrize("path", [p for p in FILES if _text(p) is not None], ids=lambda p: p.name)
def test_pygments_errs_exactly_where_the_grammar_cannot_lex(path: Path):
    text = _text(path)
    assert text is not None
    try:
        tokens(text)
        lexable = True
    except UnexpectedInput:
        lexable = False
    errors = [v for kind, v in lex(text, SpeccLexer()) if kind is Error]
    assert (errors == []) == lexable, errors


def test_keywords_layers_and_arguments_are_told_apart():
    kinds = {v: kind for kind, v in lex("block D(n) = Affine(n, init=he) -> ReLU\ninput 784\n", SpeccLexer())}
    assert kinds["block"] is Keyword and kinds["input"] is Keyword
    assert kinds["Affine"] is Name.Class and kinds["ReLU"] is Name.Class and kinds["init"] is Name.Attribute


def test_registered_for_pygments_and_rich():
    assert get_lexer_by_name("specc").name == "specc"
    assert get_lexer_for_filename("model.net").name == "specc"
    console = Console(record=True, color_system="truecolor", width=80)
    console.print(Syntax("input 784  # vectors\n", "specc"))
    assert "\x1b[" in console.export_text(styles=True)
