"""Fuzzing the front end: whatever the input, `specc check` and the API either succeed or raise
specc's own error with a location, never another exception, never a hang.

Bounded for CI; SPECC_FUZZ_EXAMPLES=N runs N examples per strategy (a long run).
"""
from __future__ import annotations

import json
import os
import random
import tracemalloc
from pathlib import Path

import pytest
from helpers import ROOT
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import specc
from specc.reading import decode_source

SEEDS = sorted(ROOT.glob("models/*.net")) + sorted((ROOT / "tests" / "golden").glob("*.net"))
EXAMPLES = int(os.environ.get("SPECC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=5000, derandomize="SPECC_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

VOCABULARY = ["Affine", "ReLU", "Relu", "Sigmoid", "Tanh", "SoftmaxWithLoss", "MeanSquaredError", "BatchNorm",
              "Dropout", "Convolution", "Pooling", "Flatten", "Dense", "n", "he", "xavier", "true", "input",
              "block", "train", "optimizer", "Adam", "lr", "batch", "epochs", "iters", "kernel", "stride", "pad",
              "->", "(", ")", ",", "=", "*", "{", "}", ";", "#", "\n", "784", "10", "0", "-1", "1e-4", "0.5",
              "1x28x28", "3x3", "'s'", '"s"', "99999999999999999999999", "1e308", ".5", "_"]


MEMORY_LIMIT = 256 * 1024**2  # no input may make the front end hold more than this at once


def outcome(data: bytes, name: str = "fuzz.net") -> str:
    """'ok' or 'error'; anything other than specc's own errors propagates and fails the test."""
    tracemalloc.start()
    try:
        specc.check_source(decode_source(name, data))
    except specc.SpeccError as e:
        assert e.diagnostics, "an error without diagnostics"
        for d in e.diagnostics:
            assert d.message
            assert d.span is None or (d.span.line >= 1 and d.span.col >= 1)
        return "error"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MEMORY_LIMIT, f"the front end held {peak:,} bytes"
    return "ok"


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data):
    outcome(data)


@FUZZ
@given(st.lists(st.sampled_from(VOCABULARY), max_size=40))
def test_random_token_sequences(tokens):
    outcome(" ".join(tokens).encode())


def _mutate(text: str, rnd: random.Random) -> str:
    ops = ["delete_char", "duplicate_char", "swap_chars", "delete_token", "duplicate_token", "swap_tokens",
           "delete_line", "duplicate_line", "swap_lines", "huge_number", "nest", "long_line", "nul", "latin1"]
    for _ in range(rnd.randint(1, 4)):
        op = rnd.choice(ops)
        if not text:
            text = "x"
        i, j = sorted(rnd.randrange(len(text)) for _ in range(2))
        tokens, lines = text.split(" "), text.split("\n")
        a, b = rnd.randrange(len(tokens)), rnd.randrange(len(tokens))
        p, q = rnd.randrange(len(lines)), rnd.randrange(len(lines))
        if op == "delete_char":
            text = text[:i] + text[i + 1:]
        elif op == "duplicate_char":
            text = text[:i] + text[i] + text[i:]
        elif op == "swap_chars":
            text = text[:i] + text[j] + text[i + 1:j] + text[i] + text[j + 1:] if i < j else text
        elif op == "delete_token":
            del tokens[a]
            text = " ".join(tokens)
        elif op == "duplicate_token":
            tokens.insert(a, tokens[a])
            text = " ".join(tokens)
        elif op == "swap_tokens":
            tokens[a], tokens[b] = tokens[b], tokens[a]
            text = " ".join(tokens)
        elif op == "delete_line":
            del lines[p]
            text = "\n".join(lines)
        elif op == "duplicate_line":
            lines.insert(p, lines[p])
            text = "\n".join(lines)
        elif op == "swap_lines":
            lines[p], lines[q] = lines[q], lines[p]
            text = "\n".join(lines)
        elif op == "huge_number":
            text = text[:i] + rnd.choice(["9" * 400, "1e999", "-0", "4294967296", "0x10", "1_0_0"]) + text[i:]
        elif op == "nest":
            depth = rnd.choice([50, 500, 5000])
            text = text[:i] + "(" * depth + "ReLU" + ")" * depth + text[i:]
        elif op == "long_line":
            text = text[:i] + "Affine(10) -> " * rnd.choice([100, 3000]) + text[i:]
        elif op == "nul":
            text = text[:i] + "\x00" + text[i:]
        elif op == "latin1":
            return (text[:i] + "é" + text[i:]).encode("latin-1", errors="replace").decode("latin-1")
    return text


@FUZZ
@given(st.sampled_from(SEEDS), st.integers(0, 2**32 - 1))
# Found by a long run: 3,000 repeated layers took 6 s to validate (now each distinct layer once).
@example(ROOT / "tests" / "golden" / "epochs_and_iters.net", 5766)
def test_mutations_of_models_and_golden_inputs(path, seed):
    text = path.read_bytes().decode("utf-8", errors="replace")
    mutated = _mutate(text, random.Random(seed))
    encoding = random.Random(seed).choice(["utf-8", "latin-1", "utf-16"])
    outcome(mutated.encode(encoding, errors="replace"))


def test_deep_nesting_and_huge_repetition_are_refused_quickly():
    assert outcome(("(" * 100_000 + "ReLU" + ")" * 100_000).encode()) == "error"
    assert outcome(b"block A = ReLU * 1000\nblock B = A * 1000\nblock C = B * 1000\n"
                   b"input 4\nC -> Affine(2) -> SoftmaxWithLoss") == "error"
    assert outcome(("input 4\n" + "ReLU -> " * 20_000 + "Affine(2) -> SoftmaxWithLoss").encode()) == "error"


# --- IR .json files ------------------------------------------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
                    | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["version", "layers", "input", "train", "type", "args", "span", "shape",
                                         "out", "in", "kernel", "optimizer", "origin", "x"]), inner, max_size=5),
                    max_leaves=25)


@FUZZ
@given(JSON)
def test_random_json_documents(doc):
    outcome(json.dumps(doc).encode(), "fuzz.json")


def _valid_ir(path: Path) -> dict:
    return specc.ir_document(specc.read(path))


@FUZZ
@given(st.sampled_from(sorted(ROOT.glob("models/*.net"))), st.data())
def test_schema_shaped_but_wrong_ir(path, data):
    doc = _valid_ir(path)
    layers = doc["layers"]
    for _ in range(data.draw(st.integers(1, 3))):
        layer = layers[data.draw(st.integers(0, len(layers) - 1))]
        if layer["args"]:
            key = data.draw(st.sampled_from(sorted(layer["args"])))
            layer["args"][key] = data.draw(st.integers(-3, 10**7) | st.sampled_from([None, "he", 0.5, True]))
        if data.draw(st.booleans()):
            layer["type"] = data.draw(st.sampled_from(["Affine", "Pooling", "SoftmaxWithLoss", "Convolution",
                                                       "Flatten", "BatchNorm", "Nope"]))
    if data.draw(st.booleans()):
        doc["input"] = {"shape": data.draw(st.lists(st.integers(0, 64), min_size=0, max_size=4))}
    outcome(json.dumps(doc).encode(), "fuzz.json")


@pytest.mark.parametrize("path", sorted(ROOT.glob("models/*.net")), ids=lambda p: p.name)
def test_models_still_check(path):
    assert outcome(path.read_bytes(), path.name) == "ok"
