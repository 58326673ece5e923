"""Stage 1, parse: text -> syntax tree. Trees compare by value (spans excluded), so the expected
trees are written out by hand; syntax errors are checked for their place, message and hint."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_examples import EXAMPLES

import specc
from specc import syntax as s
from specc.errors import SpecError
from specc.parse import parse
from specc.source import Source, Span


def P(text: str) -> s.Module:
    return parse(Source("t.net", text))


def chain(*items) -> s.Chain:
    return s.Chain(tuple(items))


def call(name: str, *args, **kwargs) -> s.Call:
    return s.Call(name, tuple(s.Arg(None, _v(a)) for a in args)
                  + tuple(s.Arg(k, _v(v)) for k, v in kwargs.items()))


def _v(x):
    if isinstance(x, (s.Number, s.String, s.Name, s.Call)):
        return x
    if isinstance(x, (int, float)):
        return s.Number(x)
    return s.Name(x)


def net(*items) -> s.Module:
    return s.Module((s.NetworkDef(chain(*items)),))


def only_chain(text: str) -> s.Chain:
    (stmt,) = [x for x in P(text).statements if isinstance(x, s.NetworkDef)]
    return stmt.chain


def syntax_error(text: str):
    with pytest.raises(SpecError) as info:
        P(text)
    (d,) = info.value.diagnostics
    assert d.code == "syntax"
    return d


# --- the examples, as written ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_design_example_parses(name):
    assert P(EXAMPLES[name]).statements


def test_two_layer_net_tree():
    expected = net(call("Affine", 784, 50), call("ReLU"), call("Affine", 50, 10), call("SoftmaxWithLoss"))
    assert P("Affine(784,50) -> ReLU -> Affine(50,10) -> SoftmaxWithLoss") == expected
    assert P(EXAMPLES["two_layer"]) == expected


def test_inferred_example_tree():
    assert P(EXAMPLES["inferred"]) == s.Module((
        s.Input((784,)),
        s.NetworkDef(chain(call("Affine", 50, init="he"), call("ReLU"), call("Affine", 10),
                           call("SoftmaxWithLoss"))),
    ))


def test_conv_example_tree():
    assert P(EXAMPLES["conv"]) == s.Module((
        s.Input((1, 28, 28)),
        s.NetworkDef(chain(call("Convolution", 30, kernel=5), call("ReLU"), call("Pooling", 2, stride=2),
                           call("Affine", 100), call("ReLU"), call("Affine", 10), call("SoftmaxWithLoss"))),
    ))


def test_blocks_example_tree():
    assert P(EXAMPLES["blocks_readme"]) == s.Module((
        s.BlockDef("Dense", (s.BlockParam("n"), s.BlockParam("p", s.Number(0.1))),
                   chain(call("Affine", "n"), call("BatchNorm"), call("ReLU"), call("Dropout", "p"))),
        s.Input((784,)),
        s.NetworkDef(chain(s.Repeat(call("Dense", 100), s.Number(3)), call("Affine", 10),
                           call("SoftmaxWithLoss"))),
    ))


def test_train_example_tree():
    assert P(EXAMPLES["train_only"]) == s.Module((s.TrainDef((
        s.SettingDef("optimizer", call("Adam", lr=0.001)),
        s.SettingDef("batch", s.Number(100)),
        s.SettingDef("epochs", s.Number(10)),
        s.SettingDef("weight_decay", s.Number(1e-4)),
        s.SettingDef("seed", s.Number(0)),
    )),))


# --- values --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, value", [
    ("100", 100), ("0", 0), ("1_000", 1000), ("-1", -1), ("+3", 3),
    ("0.1", 0.1), ("1e-4", 1e-4), ("1E4", 1e4), (".5", 0.5), ("-.5", -0.5), ("2.", 2.0),
    ("1_000.5", 1000.5), ("1.5e3", 1500.0), ("-2e-3", -0.002),
])
def test_numbers(text, value):
    (arg,) = only_chain(f"Dropout({text})").items[0].args
    assert arg.value == s.Number(value)
    assert type(arg.value.value) is type(value)  # 100 stays an int, 1e4 is a float


def test_a_huge_integer_is_kept_as_a_float_not_a_crash():
    (arg,) = only_chain("Affine(" + "9" * 400 + ")").items[0].args
    assert arg.value.value == float("inf")


@pytest.mark.parametrize("text, value", [
    ("'he'", "he"), ('"he"', "he"), ('"it\'s"', "it's"), ("'say \"hi\"'", 'say "hi"'),
    (r'"a\"b"', 'a"b'), (r"'a\\b'", "a\\b"), ('""', ""),
])
def test_strings(text, value):
    (arg,) = only_chain(f"Affine(10, init={text})").items[0].args[1:]
    assert arg == s.Arg("init", s.String(value))


def test_names_and_calls_as_values():
    (c,) = only_chain("X(a=true, b=he, c=Adam(lr=0.1), d=f)").items
    assert c.args == (s.Arg("a", s.Name("true")), s.Arg("b", s.Name("he")),
                      s.Arg("c", call("Adam", lr=0.1)), s.Arg("d", s.Name("f")))


def test_positional_and_keyword_arguments():
    assert only_chain("Convolution(30, 5, stride=2, pad=1)") == chain(
        call("Convolution", 30, 5, stride=2, pad=1))
    assert only_chain("Affine()") == chain(call("Affine"))
    assert only_chain("Affine") == chain(call("Affine"))


@pytest.mark.parametrize("text", ["Affine(784, 50,)", "Affine(784, 50 , )", "Affine(\n  784,\n  50,\n)"])
def test_trailing_comma_in_arguments(text):
    assert only_chain(text) == chain(call("Affine", 784, 50))


def test_trailing_comma_in_block_parameters():
    (b,) = P("block D(n, p=1,) = Affine(n)").statements
    assert b.params == (s.BlockParam("n"), s.BlockParam("p", s.Number(1)))


# --- statements -------------------------------------------------------------------------

@pytest.mark.parametrize("text, dims", [
    ("input 784", (784,)), ("input 1x28x28", (1, 28, 28)), ("input 3x32", (3, 32)),
    ("input 1_000", (1000,)),
])
def test_input(text, dims):
    assert P(text) == s.Module((s.Input(dims),))


def test_block_definitions():
    assert P("block Stem = Convolution(16, kernel=3) -> ReLU") == s.Module((
        s.BlockDef("Stem", (), chain(call("Convolution", 16, kernel=3), call("ReLU"))),))
    assert P("block D() = ReLU").statements[0].params == ()


def test_repetition():
    assert only_chain("X * 3") == chain(s.Repeat(call("X"), s.Number(3)))
    assert only_chain("Dense(100) * 3 -> ReLU") == chain(s.Repeat(call("Dense", 100), s.Number(3)), call("ReLU"))


def test_repeated_group():
    assert only_chain("(A -> B) * 2") == chain(s.Repeat(chain(call("A"), call("B")), s.Number(2)))


def test_a_group_without_repetition_is_a_nested_chain():
    assert only_chain("A -> (B -> C) -> D") == chain(call("A"), chain(call("B"), call("C")), call("D"))


def test_repetition_count_is_kept_as_written_for_lowering_to_judge():
    assert only_chain("X * 0") == chain(s.Repeat(call("X"), s.Number(0)))
    assert only_chain("X * -2") == chain(s.Repeat(call("X"), s.Number(-2)))
    assert only_chain("X * 2.5") == chain(s.Repeat(call("X"), s.Number(2.5)))


MULTI_LINE = """\
input 784   # vectors
# a comment line
Affine(50,      # hidden size
       init=he) # comment after a call
  -> ReLU       # comment after a layer
  ->            # comment after an arrow
  Affine(10)

  -> SoftmaxWithLoss  # last
# trailing comment"""


def test_multi_line_chain_with_comments_anywhere():
    assert P(MULTI_LINE) == P("input 784\nAffine(50, init=he) -> ReLU -> Affine(10) -> SoftmaxWithLoss")


def test_crlf_and_tabs_parse_like_lf_and_spaces():
    lf = MULTI_LINE + "\ntrain {\n  batch = 100\n  seed = 0\n}\n"
    crlf = lf.replace("\n", "\r\n").replace("  ", "\t")
    assert P(crlf) == P(lf)


def test_spans_count_lines_and_columns_with_crlf_and_tabs():
    text = "input 784\r\n\tAffine(50)\r\n\t-> ReLU\r\n"
    (_, network) = P(text).statements
    affine, relu = network.chain.items
    assert affine.span == Span(2, 2, 2, 12)
    assert affine.name_span == Span(2, 2, 2, 8)
    assert relu.span == Span(3, 5, 3, 9)


def test_keyword_argument_spans_cover_key_and_value():
    (c,) = only_chain("Convolution(30, kernel=5)").items
    assert [a.span for a in c.args] == [Span(1, 13, 1, 15), Span(1, 17, 1, 25)]
    assert c.args[1].key_span == Span(1, 17, 1, 23)


@pytest.mark.parametrize("separators", [("\n", "\n"), (", ", ", "), ("; ", "; "), (",\n", ";\n"), (" ", " ")])
def test_train_setting_separators(separators):
    a, b = separators
    text = f"train {{ optimizer = SGD(lr=0.1){a}batch = 100{b}seed = 0 }}"
    assert P(text) == s.Module((s.TrainDef((
        s.SettingDef("optimizer", call("SGD", lr=0.1)), s.SettingDef("batch", s.Number(100)),
        s.SettingDef("seed", s.Number(0)))),))


def test_train_trailing_separator_and_empty_section():
    assert P("train { batch = 1, }").statements == (s.TrainDef((s.SettingDef("batch", s.Number(1)),)),)
    assert P("train { batch = 1; }") == P("train { batch = 1 }")
    assert P("train {}") == s.Module((s.TrainDef(()),))


def test_train_values_of_every_kind():
    (t,) = P("train { data = 'mnist', dtype = float64, schedule = step(every=5), lr = 1e-3 }").statements
    assert [x.value for x in t.settings] == [s.String("mnist"), s.Name("float64"),
                                             call("step", every=5), s.Number(1e-3)]


def test_statements_in_any_order_and_layout():
    text = "train { seed = 1 } Affine(10) -> SoftmaxWithLoss input 784 block B = ReLU"
    kinds = [type(x) for x in P(text).statements]
    assert kinds == [s.TrainDef, s.NetworkDef, s.Input, s.BlockDef]


def test_two_chains_parse_as_two_statements_for_lowering_to_report():
    assert len(P("Affine(784, 10)\nSoftmaxWithLoss").statements) == 2


def test_a_byte_order_mark_is_ignored():
    from specc.reading import decode_source
    assert parse(decode_source("t.net", b"\xef\xbb\xbfReLU")) == net(call("ReLU"))


_TOKENS = ["block", "Dense", "(", "n", ",", "p", "=", "0.1", ")", "=", "Affine", "(", "n", ")", "->",
           "Dropout", "(", "p", ")", "input", "1x28x28", "Dense", "(", "100", ",", ")", "*", "3", "->",
           "SoftmaxWithLoss", "train", "{", "batch", "=", "100", ";", "seed", "=", "0", "}"]
_GAPS = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", " # note\n", "\n\n", "\t# x\r\n  "])


@settings(max_examples=60, deadline=None)
@given(st.lists(_GAPS, min_size=len(_TOKENS), max_size=len(_TOKENS)))
def test_layout_never_changes_the_tree(gaps):
    text = "".join(tok + gap for tok, gap in zip(_TOKENS, gaps))
    assert P(text) == P(" ".join(_TOKENS))


# --- syntax errors ------------------------------------------------------------------------

@pytest.mark.parametrize("text, line, col, message, hint", [
    # a missing comma between arguments
    ("input 784\nAffine(50 10) -> ReLU", 2, 11, "expected ')' or ',', found '10'", "separate arguments with ','"),
    # an unclosed parenthesis, before the next arrow and at the end of the file
    ("Affine(784, 50 -> ReLU", 1, 16, "found '->'", "a '(' is not closed before the next '->'"),
    ("input 784\nAffine(784, 50\n\n", 2, 15, "found the end of the file", "a '(' is never closed"),
    # ':' where '=' belongs, in a train section and in a keyword argument
    ("ReLU\ntrain {\n  batch: 100\n}", 3, 8, "unexpected character ':'", "use '='"),
    ("Convolution(30, kernel: 5)", 1, 23, "unexpected character ':'", "use '='"),
    # arrows
    ("Affine(10) ->", 1, 14, "found the end of the file", "a layer is missing after it"),
    ("Affine(10) -> -> ReLU", 1, 15, "found '->'", "a layer is missing before this one"),
    ("-> ReLU", 1, 1, "found '->'", "'->' must follow a layer"),
    ("Affine(10) > ReLU", 1, 12, "unexpected character '>'", "joined with '->'"),
    ("Affine(10) => ReLU", 1, 12, "found '='", "joined with '->'"),
    ("Affine(10) \u2192 ReLU", 1, 12, "unexpected character", "write the arrow as '->'"),
    # arguments without parentheses, lists
    ("input 784\nAffine 50 -> ReLU", 2, 8, "found '50'", "arguments go in parentheses"),
    ("Affine([784, 50])", 1, 8, "unexpected character '['", "lists are not part of the language"),
    # shapes
    ("input 1 x 28 x 28\nReLU", 1, 11, "found '28'", "without spaces"),
    ("1x28x28 -> ReLU", 1, 1, "found '1x28x28'", "only written after `input`"),
    ("Convolution(3, kernel=3x3)", 1, 24, "found 'x3'", "an argument is one number"),
    # the train section
    ("ReLU\ntrain {\n  batch = 100\n", 3, 14, "found the end of the file", "never closed with '}'"),
    ("ReLU\ntrain { batch 100 }", 2, 15, "expected '=', found '100'", "`batch = 100`"),
    ("ReLU\ntrain { batch = 100 5 }", 2, 21, "expected a setting (`name = value`) or '}', found '5'",
     "one value each"),
    ("ReLU\n{ batch = 1 }", 2, 1, "found '{'", "opens only a `train"),
    # other statements
    ("input 784 10", 1, 11, "expected a new statement", None),
    ("block 5 = ReLU", 1, 7, "expected a name, found '5'", None),
    ("Affine(10) * 2 3", 1, 16, "expected '->' or the end of the statement, found '3'", None),
    ("Affine(k=)", 1, 10, "found ')'", None),
])
def test_syntax_errors(text, line, col, message, hint):
    d = syntax_error(text)
    assert (d.span.line, d.span.col) == (line, col)
    assert message in d.message
    if hint is None:
        assert d.hint is None
    else:
        assert hint in d.hint


def test_syntax_error_span_covers_the_unexpected_token():
    d = syntax_error("Affine(50 100)")
    assert d.span == Span(1, 11, 1, 14)
    assert d.label == "unexpected here"


def test_syntax_error_position_after_tabs_and_crlf():
    d = syntax_error("input 784\r\n\tAffine(50 10)\r\n")
    assert (d.span.line, d.span.col) == (2, 12)


def test_syntax_error_message_never_lists_terminal_names():
    for text in ["Affine(10) 5", "input", "block", "train", "Affine(", "X *", "train { a = }"]:
        d = syntax_error(text)
        for internal in ("__ANON", "RPAR", "LPAR", "$END", "NAME", "INT", "..."):
            assert internal not in d.message, (text, d.message)


def test_syntax_error_carries_the_source_for_rendering():
    with pytest.raises(SpecError) as info:
        parse(Source("model.net", "Affine(10"))
    assert info.value.source.name == "model.net"
    assert info.value.name == "model.net"


def test_absurd_nesting_is_an_error_not_a_crash():
    # Regression: building the tree of 2,000 nested parentheses raised RecursionError.
    for text in ["(" * 2000 + "ReLU" + ")" * 2000, "Affine(10, init=" + "f(" * 2000 + ")" * 2001]:
        with pytest.raises(SpecError) as info:
            P(text)
        (d,) = info.value.diagnostics
        assert d.code == "too-deep" and d.message == "parentheses or calls nest too deeply"


def test_reasonable_nesting_is_fine():
    assert only_chain("(" * 50 + "ReLU" + ")" * 50).items


def test_syntax_errors_in_separate_statements_are_all_reported():
    text = ("input 784\nAffine(50 10) -> ReLU\n  -> Affine(10) -> SoftmaxWithLoss\ntrain { batch: 3 }\n"
            "ReLU -> -> Affine(3)\n")
    with pytest.raises(specc.SpecError) as info:
        specc.check_text(text, "t.net")
    assert [(d.span.line, d.span.col) for d in info.value.diagnostics] == [(2, 11), (4, 14), (5, 9)]


def test_the_rest_of_a_broken_statement_is_not_reported_again():
    # regression guard: skipping tokens inside a statement would report `-> Affine` as a second error
    with pytest.raises(specc.SpecError) as info:
        specc.check_text("input 784\nAffine(10 -> ReLU\n-> Affine(10) -> SoftmaxWithLoss", "t.net")
    assert len(info.value.diagnostics) == 1
