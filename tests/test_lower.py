"""Stage 2, lower: syntax tree -> IR document. Blocks and repetition expanded (and remembered in
`origin`), defaults filled, aliases resolved; name errors reported with suggestions."""
from __future__ import annotations

import time

import pytest
from spec_examples import NETWORKS

from specc.lower import MAX_LAYERS, lower
from specc.parse import parse
from specc.source import Source, Span


def lowered(text: str) -> dict:
    ir, errors = lower(parse(Source("t.net", text)), "t.net")
    assert errors == []
    return ir


def errors_of(text: str) -> list:
    _, errors = lower(parse(Source("t.net", text)), "t.net")
    assert errors
    return errors


def one_error(text: str):
    (d,) = errors_of(text)
    return d


def span(line, col, end_line, end_col) -> dict:
    return Span(line, col, end_line, end_col).to_json()


def types(ir: dict) -> list[str]:
    return [layer["type"] for layer in ir["layers"]]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_example_lowers_without_errors(name):
    ir = lowered(NETWORKS[name])
    assert ir["version"] == 1 and ir["layers"]


def test_document_shape():
    ir = lowered("input 1x28x28\nFlatten -> Affine(10) -> SoftmaxWithLoss")
    assert ir["version"] == 1
    assert ir["source"] == "t.net"
    assert ir["input"] == {"shape": [1, 28, 28], "span": span(1, 1, 1, 14)}
    assert types(ir) == ["Flatten", "Affine", "SoftmaxWithLoss"]
    assert "train" not in ir


def test_no_input_line_gives_null_input():
    assert lowered("Affine(784, 10) -> SoftmaxWithLoss")["input"] is None


# --- arguments ------------------------------------------------------------------------------

def test_positional_arguments_bind_by_count():
    a1, a2, a3 = lowered("Affine(50) -> Affine(784, 50) -> Affine(784, 50, he)")["layers"]
    assert a1["args"] == {"in": None, "out": 50, "init": "auto"}
    assert a2["args"] == {"in": 784, "out": 50, "init": "auto"}
    assert a3["args"] == {"in": 784, "out": 50, "init": "he"}


@pytest.mark.parametrize("text, args", [
    ("Affine(10)", {"in": None, "out": 10, "init": "auto"}),
    ("Convolution(30, kernel=5)", {"filters": 30, "kernel": 5, "stride": 1, "pad": 0, "init": "auto"}),
    ("Convolution(30, 5, 2, 1, xavier)", {"filters": 30, "kernel": 5, "stride": 2, "pad": 1, "init": "xavier"}),
    ("Pooling", {"size": 2, "stride": 2, "pad": 0}),
    ("Pooling(3)", {"size": 3, "stride": 3, "pad": 0}),  # stride defaults to the window size
    ("Pooling(3, stride=1)", {"size": 3, "stride": 1, "pad": 0}),
    ("BatchNorm", {"momentum": 0.9, "eps": 1e-6}),
    ("Dropout", {"ratio": 0.5, "scale": "train"}),
    ("Dropout(0.25)", {"ratio": 0.25, "scale": "train"}),
    ('Dropout(0.25, scale="test")', {"ratio": 0.25, "scale": "test"}),
    ("ReLU", {}),
])
def test_defaults_are_filled_in(text, args):
    (layer,) = lowered(text)["layers"]
    assert layer["args"] == args
    assert list(layer["args"]) == list(args)  # in declaration order


def test_argument_spans_point_at_what_was_written():
    (layer,) = lowered("Convolution(30, kernel=5)")["layers"]
    assert layer["span"] == span(1, 1, 1, 26)
    assert layer["arg_spans"] == {"filters": span(1, 13, 1, 15), "kernel": span(1, 17, 1, 25)}


def test_true_and_false_are_booleans_other_names_are_symbols():
    a, b, c, d = lowered("Affine(10, init=true) -> Affine(10, init=false) -> Affine(10, init=he) "
                         "-> Affine(10, init='he')")["layers"]
    assert a["args"]["init"] is True and b["args"]["init"] is False
    assert c["args"]["init"] == d["args"]["init"] == "he"
    t = lowered("ReLU\ntrain { data = true, dtype = float32, seed = 0 }")["train"]
    assert t["data"] is True and t["dtype"] == "float32" and t["seed"] == 0


@pytest.mark.parametrize("written, canonical", [
    ("Relu", "ReLU"), ("BatchNormalization", "BatchNorm"), ("Linear", "Affine"), ("Conv", "Convolution"),
    ("MaxPool", "Pooling"), ("MaxPooling", "Pooling"), ("MSE", "MeanSquaredError"),
])
def test_aliases_resolve_to_canonical_names_and_remember_the_spelling(written, canonical):
    args = "(10)" if canonical == "Affine" else "(3, kernel=3)" if canonical == "Convolution" else ""
    (layer,) = lowered(written + args)["layers"]
    assert layer["type"] == canonical
    assert layer["written"] == written


def test_canonical_names_have_no_written_key():
    assert all("written" not in layer for layer in lowered(NETWORKS["conv"])["layers"])


# --- blocks and repetition ---------------------------------------------------------------------

def test_block_expansion_with_origin():
    ir = lowered(NETWORKS["blocks_readme"])
    assert types(ir) == ["Affine", "BatchNorm", "ReLU", "Dropout"] * 3 + ["Affine", "SoftmaxWithLoss"]
    first, *_ = ir["layers"]
    call_span, repeat_span, definition = span(4, 1, 4, 11), span(4, 1, 4, 15), span(2, 1, 2, 69)
    assert first["origin"] == [
        {"repeat": 1, "of": 3, "call": repeat_span},
        {"block": "Dense", "call": call_span, "definition": definition},
    ]
    assert [layer["origin"][0]["repeat"] for layer in ir["layers"][:12]] == [1] * 4 + [2] * 4 + [3] * 4
    assert "origin" not in ir["layers"][-1]


def test_block_arguments_are_substituted_and_spanned_at_the_call():
    ir = lowered(NETWORKS["blocks_readme"])
    affine, dropout = ir["layers"][0], ir["layers"][3]
    assert affine["args"]["out"] == 100
    assert affine["arg_spans"]["out"] == span(4, 7, 4, 10)  # the 100 of Dense(100)
    assert affine["span"] == span(2, 25, 2, 34)  # the layer itself is where the block wrote it
    assert dropout["args"]["ratio"] == 0.1  # the block parameter's default
    assert dropout["arg_spans"]["ratio"] == span(2, 18, 2, 21)  # ... where the default is written


def test_block_keyword_arguments_and_defaults():
    text = "block D(n, p=0.1) = Affine(n) -> Dropout(p)\nD(p=0.3, n=7) -> D(5, 0.2) -> D(4)"
    ir = lowered(text)
    assert [layer["args"].get("out", layer["args"].get("ratio")) for layer in ir["layers"]] == [7, 0.3, 5, 0.2, 4, 0.1]


def test_nested_blocks_record_every_step_outermost_first():
    text = ("block Inner(k) = Affine(k) -> ReLU\n"
            "block Outer(n) = Inner(n) * 2\n"
            "Outer(50)")
    ir = lowered(text)
    assert types(ir) == ["Affine", "ReLU"] * 2
    second_affine = ir["layers"][2]
    assert [o.get("block") or f"{o['repeat']}/{o['of']}" for o in second_affine["origin"]] == ["Outer", "2/2", "Inner"]
    # the value of k was written in the outermost call, Outer(50)
    assert second_affine["arg_spans"]["out"] == span(3, 7, 3, 9)


def test_blocks_may_be_defined_after_use():
    assert types(lowered("D -> D\nblock D = ReLU")) == ["ReLU", "ReLU"]


def test_repetition_of_a_group():
    ir = lowered("(Affine(10) -> ReLU) * 2 -> Sigmoid * 3")
    assert types(ir) == ["Affine", "ReLU", "Affine", "ReLU", "Sigmoid", "Sigmoid", "Sigmoid"]
    assert [layer["origin"][0]["repeat"] for layer in ir["layers"]] == [1, 1, 2, 2, 1, 2, 3]
    assert ir["layers"][0]["origin"][0]["call"] == span(1, 1, 1, 25)


def test_a_parenthesised_group_is_flattened():
    assert types(lowered("ReLU -> (Sigmoid -> (Tanh)) -> ReLU")) == ["ReLU", "Sigmoid", "Tanh", "ReLU"]


def test_expansion_up_to_the_limit_is_allowed():
    assert len(lowered(f"ReLU * {MAX_LAYERS}")["layers"]) == MAX_LAYERS


def test_expansion_limit_is_refused_with_the_expanded_size_without_expanding():
    text = ("block A = ReLU * 1000\n"
            "block B = A * 1000\n"
            "block C = B * 1000\n"
            "C * 1000 -> Affine(10)")
    start = time.perf_counter()
    ir, errors = lower(parse(Source("t.net", text)))
    assert time.perf_counter() - start < 1.0  # 10^12 layers were counted, not built
    (d,) = errors
    assert d.code == "too-large"
    assert d.message == f"the network expands to 1,000,000,000,001 layers; the limit is {MAX_LAYERS:,}"
    assert d.span == Span(4, 1, 4, 23)
    assert ir["layers"] == []


def test_expansion_limit_counts_just_past_it():
    d = one_error(f"ReLU * {MAX_LAYERS} -> ReLU")
    assert d.code == "too-large" and f"{MAX_LAYERS + 1:,} layers" in d.message


# --- the train section ------------------------------------------------------------------------------

def test_train_settings_and_optimizer_defaults():
    t = lowered(NETWORKS["train"])["train"]
    assert t["optimizer"]["type"] == "Adam"
    assert t["optimizer"]["args"] == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999}
    assert t["optimizer"]["arg_spans"] == {"lr": span(5, 20, 5, 28)}
    assert {k: t[k] for k in ("batch", "epochs", "weight_decay", "seed")} == {
        "batch": 100, "epochs": 10, "weight_decay": 1e-4, "seed": 0}
    assert t["key_spans"]["batch"] == span(6, 3, 6, 14)
    assert t["span"]["line"] == 4


@pytest.mark.parametrize("written", ["adam", "Adam", "ADAM", "'adam'", '"Adam"', "Adam()"])
def test_optimizer_names_are_not_case_sensitive(written):
    t = lowered(f"ReLU\ntrain {{ optimizer = {written} }}")["train"]
    assert t["optimizer"]["type"] == "Adam"


def test_optimizer_positional_argument_is_the_learning_rate():
    t = lowered("ReLU\ntrain { optimizer = Momentum(0.1) }")["train"]
    assert t["optimizer"]["args"] == {"lr": 0.1, "momentum": 0.9}


def test_schedule_defaults():
    t = lowered("ReLU\ntrain { schedule = step(every=5) }")["train"]
    assert t["schedule"]["type"] == "step" and t["schedule"]["args"] == {"every": 5, "gamma": 0.1}


def test_unknown_optimizer_is_left_for_the_schema_to_report():
    t = lowered("ReLU\ntrain { optimizer = Adamm(lr=0.1) }")["train"]
    assert t["optimizer"]["type"] == "Adamm"


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, hint", [
    ("Afine(10)", "did you mean 'Affine'?"),
    ("relu", "did you mean 'ReLU'?"),
    ("RELU", "did you mean 'ReLU'?"),
    ("Batchnorm", "did you mean 'BatchNorm'?"),
    ("SoftmaxWithLos", "did you mean 'SoftmaxWithLoss'?"),
    ("block Dense(n) = Affine(n)\nDence(10)", "did you mean 'Dense'?"),
])
def test_unknown_layer_with_did_you_mean(text, hint):
    d = one_error(text)
    assert d.code == "unknown-layer"
    assert d.message.startswith("unknown layer '")
    assert d.hint == hint


def test_unknown_layer_suggestion_names_the_canonical_layer_for_an_alias():
    assert one_error("relu2").hint.startswith("did you mean 'ReLU'")


def test_unknown_layer_span_is_its_name():
    d = one_error("input 784\nAffine(10) -> Afine(10, 20)")
    assert d.span == Span(2, 15, 2, 20)
    assert d.label == "not a layer or block"


def test_undefined_block_says_how_to_define_one():
    d = one_error("Frobnicator(100) -> ReLU")
    assert d.message == "unknown layer 'Frobnicator'"
    assert "block Frobnicator(...) = ..." in d.hint


@pytest.mark.parametrize("text, cycle, line", [
    ("block A = ReLU -> A\nA", "A -> A", 1),
    ("block A = Affine(10) -> B\nblock B = ReLU -> A\nA", "A -> B -> A", 2),
    ("block A = B\nblock B = C\nblock C = A * 2\nA", "A -> B -> C -> A", 3),
])
def test_recursive_blocks(text, cycle, line):
    d = one_error(text)
    assert d.code == "recursive-block"
    assert f"({cycle})" in d.message
    assert d.span.line == line
    assert d.notes[0].message == "'A' is defined here"


@pytest.mark.parametrize("count, shown", [("0", "0"), ("-1", "-1"), ("2.5", "2.5"), ("1e3", "1000.0")])
def test_repetition_count_must_be_a_positive_integer(count, shown):
    d = one_error(f"ReLU * {count}")
    assert d.code == "bad-repeat"
    assert d.message == f"a repetition count must be a positive integer, not {shown}"
    assert d.span.col == 8


@pytest.mark.parametrize("text, message, col", [
    ("Affine(1, 2, he, 4)", "Affine takes at most 3 positional arguments (in, out, init), but 4 were given", 18),
    ("Dropout(0.1, test, 0.2)", "Dropout takes at most 2 positional arguments (ratio, scale), but 3 were given", 20),
    ("ReLU(3)", "ReLU takes no arguments, but 1 was given", 6),
    ("block D(n) = Affine(n)\nD(1, 2)", "block D(n) takes 1 argument, but 2 were given", 6),
    ("block D = ReLU\nD(1)", "block D() takes 0 arguments, but 1 was given", 3),
])
def test_too_many_positional_arguments(text, message, col):
    d = one_error(text)
    assert d.code == "too-many-args"
    assert d.message == message
    assert d.span.col == col


@pytest.mark.parametrize("text, first_col, second_col", [
    ("Affine(10, out=5)", 8, 12),
    ("Affine(out=10, out=5)", 8, 16),
])
def test_duplicate_arguments(text, first_col, second_col):
    d = one_error(text)
    assert d.code == "duplicate-arg"
    assert d.message == "argument 'out' of Affine is given twice"
    assert d.span.col == second_col
    assert d.notes[0].span.col == first_col and d.notes[0].message == "first given here"


def test_block_argument_errors():
    errors = errors_of("block D(n, n) = Affine(n)\nblock E(k) = Affine(k)\nE(k=1, k=2) -> E(m=3) -> E")
    assert [d.code for d in errors] == ["duplicate-param", "duplicate-arg", "unknown-arg", "missing-arg",
                                        "missing-arg"]
    assert errors[2].message == "block E(k) has no parameter 'm'"
    assert errors[3].message == errors[4].message == "block E(k) needs a value for 'k'"


def test_a_misspelt_block_parameter_is_reported_once():
    d = one_error("block E(size) = Affine(size)\nE(sise=1)")
    assert d.code == "unknown-arg" and d.hint == "did you mean 'size'?"


def test_block_errors_naming():
    errors = errors_of("block D = ReLU\nblock D = Tanh\nblock ReLU = Sigmoid\nblock P(n) = n\nD -> P(ReLU)")
    assert [d.code for d in errors] == ["duplicate-block", "block-shadows-layer", "not-a-layer"]
    assert errors[0].notes[0].span.line == 1
    assert errors[1].hint == "rename the block, e.g. 'ReLUBlock'"


def test_second_chain():
    d = one_error("input 784\nAffine(50) -> ReLU\nAffine(10) -> SoftmaxWithLoss")
    assert d.code == "second-chain"
    assert d.span == Span(3, 1, 3, 11)
    assert d.notes[0].span == Span(2, 1, 2, 19)
    assert "join the two with '->'" in d.hint


def test_duplicate_input_and_train():
    errors = errors_of("input 784\ninput 10\nReLU\ntrain { seed = 1 }\ntrain { batch = 2 }")
    assert [(d.code, d.span.line, d.notes[0].span.line) for d in errors] == [
        ("duplicate-input", 2, 1), ("duplicate-train", 5, 4)]


def test_duplicate_train_setting():
    d = one_error("ReLU\ntrain { seed = 1; seed = 2 }")
    assert d.code == "duplicate-setting" and d.message == "train setting 'seed' is set twice"


def test_no_chain_at_all():
    d = one_error("input 784\ntrain { seed = 1 }")
    assert d.code == "empty" and d.span is None


def test_a_call_is_not_an_argument_value_and_is_reported_once():
    ir, errors = lower(parse(Source("t.net", "Affine(10, init=Adam(lr=1)) -> ReLU\ntrain { seed = f(1) }")))
    assert [d.code for d in errors] == ["bad-value", "bad-value"]
    assert errors[0].message == "'Adam(...)' is a call, but a number, a name or a string is expected here"
    # what holds the wrong value stands as a placeholder (so that the schema does not report it
    # again, and checking steps over it); the setting is left out
    assert types(ir) == ["Affine", "ReLU"]
    assert ir["layers"][0]["placeholder"] and "args" not in ir["layers"][0]
    assert "seed" not in ir["train"]


def test_every_lowering_error_is_reported():
    errors = errors_of("input 784\ninput 10\nAfine(10) -> relu * 0 -> ReLU(1) -> Undefined")
    assert [d.code for d in errors] == ["duplicate-input", "unknown-layer", "bad-repeat", "unknown-layer",
                                        "too-many-args", "unknown-layer"]


def test_absurdly_nested_blocks_are_an_error_not_a_crash():
    # Regression: 3,000 blocks each using the next raised RecursionError while counting layers.
    text = "\n".join(f"block B{i} = B{i + 1}" for i in range(3000)) + "\nblock B3000 = ReLU\nB0"
    d = one_error(text)
    assert d.code == "too-deep" and d.span.line == 3002


def test_deeply_nested_blocks_within_reason_are_fine():
    text = "\n".join(f"block B{i} = B{i + 1}" for i in range(50)) + "\nblock B50 = ReLU\nB0"
    (layer,) = lowered(text)["layers"]
    assert len(layer["origin"]) == 51


@pytest.mark.parametrize("count, hint", [
    ("2.0", "write `* 2`: in a .net file an integer is written without a decimal point"),
    ("3e0", "write `* 3`: in a .net file an integer is written without a decimal point"),
    ("2.5", "write `Layer * 3` to repeat a layer three times"),
])
def test_a_repetition_count_written_as_a_float_says_how_to_write_it(count, hint):
    d = one_error(f"ReLU * {count}")
    assert d.code == "bad-repeat"
    assert d.hint == hint
