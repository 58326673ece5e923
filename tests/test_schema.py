"""Stage 3, schema: the IR's JSON Schema (assembled from the registries, shipped as a file) and
validation errors turned into sentences at the place the user wrote the offending value."""
from __future__ import annotations

import json

import jsonschema
import pytest
from spec_examples import NETWORKS

import specc
from specc import layers
from specc.errors import SpecError
from specc.resources import grammar_dir
from specc.schema import SCHEMA_FILE, build_schema, validate
from specc.source import Source, Span
from specc.training.optimizers import OPTIMIZERS, SCHEDULES
from specc.training.section import SETTINGS


def test_shipped_schema_file_equals_the_assembled_schema():
    shipped = json.loads((grammar_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))
    built = build_schema()
    stale = sorted(k for k in set(shipped.get("$defs", {})) | set(built["$defs"])
                   if shipped.get("$defs", {}).get(k) != built["$defs"].get(k))
    assert shipped == built, f"grammar/{SCHEMA_FILE} is stale ({', '.join(stale) or 'top level'}); " \
                             f"refresh it with `specc schema > grammar/{SCHEMA_FILE}`"


def test_schema_is_valid_draft_2020_12():
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator


def test_schema_lists_every_layer_optimizer_schedule_and_setting():
    defs = build_schema()["$defs"]
    # a built-in layer's type is one of the registry's; a layer written as an expression names itself
    expression_or_builtin = defs["layer"]["allOf"][-1]
    assert expression_or_builtin["if"] == {"required": ["expression"]}
    assert expression_or_builtin["else"]["properties"]["type"]["enum"] == list(layers.REGISTRY)
    for name, cls in layers.REGISTRY.items():
        args = defs[f"layer.{name}"]
        assert list(args["properties"]) == [a.name for a in cls.signature]
        assert args["required"] == [a.name for a in cls.signature]  # IR arguments are complete
        assert args["additionalProperties"] is False
    assert defs["optimizer"]["properties"]["type"]["enum"] == list(OPTIMIZERS)
    assert defs["schedule"]["properties"]["type"]["enum"] == list(SCHEDULES)
    assert set(SETTINGS) <= set(defs["train"]["properties"])


def test_every_argument_is_described():
    for name, cls in layers.REGISTRY.items():
        for a in cls.signature:
            assert a.expects and (a.doc or a.expects), (name, a.name)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_examples_produce_schema_valid_ir(name):
    doc = specc.ir_document(Source("t.net", NETWORKS[name]))
    assert validate(doc) == []
    jsonschema.validate(doc, build_schema(), cls=jsonschema.Draft202012Validator)


# --- errors at the place they were written ----------------------------------------------------------

def schema_errors(text: str) -> list:
    with pytest.raises(SpecError) as info:
        specc.ir_document(Source("t.net", text))
    return list(info.value.diagnostics)


def one_error(text: str):
    (d,) = schema_errors(text)
    return d


IMAGE = "input 1x28x28\n"


@pytest.mark.parametrize("text, message, where, hint", [
    (IMAGE + "Convolution(30, kernel=-5)",
     "Convolution: 'kernel' expects a positive integer (the kernel's height and width), but received -5",
     Span(2, 17, 2, 26), None),
    (IMAGE + "Convolution(30, 0)",
     "Convolution: 'kernel' expects a positive integer (the kernel's height and width), but received 0",
     Span(2, 17, 2, 18), None),
    ("Affine(784, 0)", "Affine: 'out' expects a positive integer (the number of outputs), but received 0",
     Span(1, 13, 1, 14), None),
    ("Affine(784, 2.5)", "Affine: 'out' expects a positive integer (the number of outputs), but received 2.5",
     Span(1, 13, 1, 16), None),
    ("Affine(784, '10')", "Affine: 'out' expects a positive integer (the number of outputs), but received '10'",
     Span(1, 13, 1, 17), None),
    ("Affine(10, init=hee)", "Affine: 'init' expects 'auto', 'he', 'xavier' or a positive number "
     "(the standard deviation), but received 'hee'", Span(1, 12, 1, 20), "did you mean 'he'?"),
    ("Affine(10, init=-0.1)", "Affine: 'init' expects 'auto', 'he', 'xavier' or a positive number "
     "(the standard deviation), but received -0.1", Span(1, 12, 1, 21), None),
    ("Dropout(1)", "Dropout: 'ratio' expects a number from 0 up to (not including) 1, but received 1",
     Span(1, 9, 1, 10), None),
    ("Dropout(ratio=true)", "Dropout: 'ratio' expects a number from 0 up to (not including) 1, but received true",
     Span(1, 9, 1, 19), None),
    ("BatchNorm(eps=0)", "BatchNorm: 'eps' expects a small positive number, but received 0", Span(1, 11, 1, 16), None),
    (IMAGE + "Pooling(2, pad=-1)", "Pooling: 'pad' expects a non-negative integer, but received -1",
     Span(2, 12, 2, 18), None),
])
def test_argument_errors_point_at_the_argument(text, message, where, hint):
    d = one_error(text)
    assert d.code == "bad-arg"
    assert d.message == message
    assert d.span == where
    assert d.hint == hint


def test_an_argument_passed_through_a_block_is_reported_at_the_call():
    d = one_error("block D(k) = Convolution(3, kernel=k)\ninput 1x28x28\nD(4) -> D(-1)")
    assert d.span == Span(3, 11, 3, 13)
    assert "received -1" in d.message


def test_an_error_inside_a_repeated_block_is_reported_once():
    (d,) = schema_errors("block D = Dropout(2)\ninput 784\nD * 5")
    assert d.span == Span(1, 19, 1, 20)


def test_unknown_argument_with_suggestion_and_no_second_error_for_the_misspelt_name():
    d = one_error(IMAGE + "Convolution(30, kernal=5)")
    assert d.code == "unknown-arg"
    assert d.message == "Convolution has no argument 'kernal'"
    assert d.span == Span(2, 17, 2, 25)
    assert d.hint == "did you mean 'kernel'?"


def test_unknown_argument_without_a_near_miss_lists_the_arguments_and_keeps_the_missing_one():
    missing, unknown = schema_errors(IMAGE + "Convolution(30, dilation=5)")
    assert missing.code == "missing-arg"
    assert missing.message == "Convolution needs the argument 'kernel' (height and width of each filter)"
    assert missing.span == Span(2, 1, 2, 28)
    assert unknown.code == "unknown-arg"
    assert unknown.hint == "Convolution takes filters, kernel, stride, pad, init"


def test_unknown_argument_of_a_layer_without_arguments():
    d = one_error("ReLU(slope=0.1)")
    assert d.hint == "ReLU takes no arguments"


def test_missing_argument():
    d = one_error("Affine")
    assert d.code == "missing-arg"
    assert d.message == "Affine needs the argument 'out' (outputs per sample)"
    assert d.label == "'out' missing"
    assert d.hint == "Affine takes in, out, init, e.g. `Affine(out=...)`"


@pytest.mark.parametrize("text, code, message, hint, where", [
    ("optimizer = Adamm(lr=0.1)", "unknown-optimizer", "unknown optimizer 'Adamm'", "did you mean 'Adam'?",
     Span(2, 21, 2, 34)),
    ("optimizer = sgd2", "unknown-optimizer", "unknown optimizer 'sgd2'", "did you mean 'SGD'?", Span(2, 21, 2, 25)),
    ("optimizer = Frob", "unknown-optimizer", "unknown optimizer 'Frob'",
     "optimizers: SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam", Span(2, 21, 2, 25)),
    ("optimizer = Adam(lrr=0.1)", "unknown-arg", "Adam has no argument 'lrr'", "did you mean 'lr'?",
     Span(2, 26, 2, 33)),
    ("optimizer = SGD(lr=0)", "bad-arg", "SGD: 'lr' expects a positive number, but received 0", None,
     Span(2, 25, 2, 29)),
    ("schedule = cosinus", "unknown-schedule", "unknown schedule 'cosinus'", "did you mean 'cosine'?",
     Span(2, 20, 2, 27)),
    ("epoch = 10", "unknown-setting", "unknown train setting 'epoch'", "did you mean 'epochs'?",
     Span(2, 9, 2, 19)),
    ("learning_rate = 0.1", "unknown-setting", "unknown train setting 'learning_rate'", None, Span(2, 9, 2, 28)),
    ("batch = 0", "bad-setting", "train setting 'batch' expects a positive integer, but received 0", None,
     Span(2, 9, 2, 18)),
    ("batch = 10.5", "bad-setting", "train setting 'batch' expects a positive integer, but received 10.5", None,
     Span(2, 9, 2, 21)),
    ("dtype = float16", "bad-setting", "train setting 'dtype' expects 'float32' or 'float64', "
     "but received 'float16'", None, Span(2, 9, 2, 24)),
    ("seed = -1", "bad-setting", "train setting 'seed' expects a non-negative integer, but received -1", None,
     Span(2, 9, 2, 18)),
])
def test_train_errors(text, code, message, hint, where):
    d = one_error("Affine(784, 10) -> SoftmaxWithLoss\ntrain { " + text + " }")
    assert (d.code, d.message) == (code, message)
    if hint is None:
        assert d.hint is None or d.hint.startswith("settings: ")
    else:
        assert d.hint == hint
    assert d.span == where


def test_unknown_setting_without_a_near_miss_lists_the_settings():
    d = one_error("ReLU\ntrain { learning_rate = 0.1 }")
    assert d.hint == "settings: " + ", ".join(SETTINGS)


def test_every_schema_error_is_reported_in_source_order():
    errors = schema_errors("input 1x28x28\nConvolution(30, kernel=0) -> Dropout(2) -> Affine(0)\n"
                           "train { batch = 0, epoch = 1 }")
    assert [(d.span.line, d.code) for d in errors] == [
        (2, "bad-arg"), (2, "bad-arg"), (2, "bad-arg"), (3, "bad-setting"), (3, "unknown-setting")]
    assert [d.span.col for d in errors[:3]] == [17, 38, 51]


# --- documents that did not come from a .net file -----------------------------------------------------

def test_valid_document_has_no_errors():
    doc = {"version": 1, "input": {"shape": [784]},
           "layers": [{"type": "Affine", "args": {"in": None, "out": 10, "init": "auto"}},
                      {"type": "SoftmaxWithLoss", "args": {}}]}
    assert validate(doc) == []


@pytest.mark.parametrize("doc, path, message", [
    ({"version": 2, "layers": []}, ("version",), "unsupported IR version 2; this specc reads version 1"),
    ({"version": 1, "layers": 5}, ("layers",), "invalid IR at layers: 5 is not of type 'array'"),
    ({"version": 1}, (), "invalid IR at the document: 'layers' is a required property"),
    ({"version": 1, "layers": [], "extra": 1}, (), "invalid IR at the document: Additional properties are not "
     "allowed ('extra' was unexpected)"),
    ({"version": 1, "layers": [{"type": "Afine", "args": {}}]}, ("layers", 0, "type"), "unknown layer 'Afine'"),
    ({"version": 1, "input": {"shape": [0]}, "layers": []}, ("input",),
     "the input shape must be 1 to 3 positive integers, but received [0]"),
    ({"version": 1, "input": {"shape": [1, 2, 3, 4]}, "layers": []}, ("input",),
     "the input shape must be 1 to 3 positive integers, but received [1, 2, 3, 4]"),
    ({"version": 1, "layers": [{"type": "ReLU", "args": {"x": 1}}]}, ("layers", 0, "args", "x"),
     "ReLU has no argument 'x'"),
])
def test_hand_written_documents(doc, path, message):
    (d,) = validate(doc)
    assert d.path == path
    assert d.message == message
    assert d.span is None  # the API places it, in the .json file or in the .net source


def test_unknown_layer_in_a_document_suggests_the_canonical_name():
    (d,) = validate({"version": 1, "layers": [{"type": "Relu", "args": {}}]})
    assert d.hint == "did you mean 'ReLU'?"


def test_missing_argument_without_a_doc_says_what_it_expects():
    # Regression: the message read "step needs the argument 'gamma' ()".
    (d,) = validate({"version": 1, "layers": [], "train": {"schedule": {"type": "step", "args": {"every": 1}}}})
    assert d.message == "step needs the argument 'gamma' (a number above 0 up to 1)"


# --- bounds are stated; an integer is written as an integer ------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("Affine(784, 3000000000)", "Affine: 'out' expects a positive integer up to 2,147,483,647 "
                                "(the number of outputs), but received 3000000000"),
    ("Affine(784, 5e9)", "Affine: 'out' expects a positive integer up to 2,147,483,647 "
                         "(the number of outputs), but received 5e+09"),
    ("Affine(784, 10, init=1e7)", "Affine: 'init' expects 'auto', 'he', 'xavier' or a positive number up to "
                                  "1,000,000 (the standard deviation), but received 1e+07"),
    ("BatchNorm(eps=2)", "BatchNorm: 'eps' expects a small positive number up to 1, but received 2"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { seed = 5000000000 }",
     "train setting 'seed' expects a non-negative integer up to 4,294,967,295, but received 5000000000"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { lr = 1e7 }",
     "train setting 'lr' expects a positive number up to 1,000,000, but received 1e+07"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { optimizer = Adam(lr=2e6) }",
     "Adam: 'lr' expects a positive number up to 1,000,000, but received 2e+06"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { weight_decay = 2e6 }",
     "train setting 'weight_decay' expects a non-negative number up to 1,000,000, but received 2e+06"),
    ("input 3000000000\nAffine(10)", "the input shape must be 1 to 3 positive integers up to 2,147,483,647, "
                                     "but received [3000000000]"),
    # a bound the words already state is not repeated
    ("Dropout(1)", "Dropout: 'ratio' expects a number from 0 up to (not including) 1, but received 1"),
])
def test_a_value_past_its_upper_bound_is_told_the_bound(text, message):
    assert one_error(text).message == message


@pytest.mark.parametrize("text, message, hint", [
    ("Affine(784.0, 50)", "Affine: 'in' expects a positive integer (the number of inputs), but received 784.0",
     "write 784"),
    ("Affine(784, 50.0)", "Affine: 'out' expects a positive integer (the number of outputs), but received 50.0",
     "write 50"),
    ("input 1x28x28\nConvolution(3, kernel=5.0)",
     "Convolution: 'kernel' expects a positive integer (the kernel's height and width), but received 5.0",
     "write 5"),
    ("block D(n) = Affine(n)\ninput 784\nD(1e1)",
     "Affine: 'out' expects a positive integer (the number of outputs), but received 10.0", "write 10"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { batch = 100.0 }",
     "train setting 'batch' expects a positive integer, but received 100.0", "write 100"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { epochs = 1.0 }",
     "train setting 'epochs' expects a positive integer, but received 1.0", "write 1"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { seed = 0.0 }",
     "train setting 'seed' expects a non-negative integer, but received 0.0", "write 0"),
    ("Affine(784, 10) -> SoftmaxWithLoss\ntrain { schedule = step(every=5.0) }",
     "step: 'every' expects a positive integer (epochs), but received 5.0", "write 5"),
])
def test_an_integer_written_with_a_decimal_point_in_a_net_file_is_refused(text, message, hint):
    d = one_error(text)
    assert d.message == message
    assert d.hint == f"{hint}: in a .net file an integer is written without a decimal point"


def test_an_integral_float_out_of_range_is_reported_once_for_its_range():
    (d,) = schema_errors("Affine(784, 3e9)")
    assert "up to 2,147,483,647" in d.message and d.hint is None


def test_a_json_ir_file_may_write_integers_as_floats_and_they_become_ints(tmp_path):
    doc = {"version": 1, "input": {"shape": [784]},
           "layers": [{"type": "Affine", "args": {"in": 784.0, "out": 10.0, "init": "auto"}},
                      {"type": "SoftmaxWithLoss", "args": {}}],
           "train": {"batch": 100.0, "epochs": 2.0, "seed": 3.0,
                     "schedule": {"type": "step", "args": {"every": 2.0, "gamma": 0.5}}}}
    (tmp_path / "n.json").write_text(json.dumps(doc), encoding="utf-8")
    net = specc.check_file(tmp_path / "n.json").network
    args, train = net.layers[0].args, net.train.settings
    values = [args["in"], args["out"], train["batch"], train["epochs"], train["seed"], train["schedule"].args["every"]]
    assert values == [784, 10, 100, 2, 3, 2]
    assert all(type(v) is int for v in values)
