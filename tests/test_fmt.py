"""specc fmt: idempotent, the network unchanged on every file, comments kept wherever they are."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from helpers import ROOT
from rich.console import Console

from specc import api, cli
from specc.errors import SpeccError, SpecError
from specc.source import Source
from specc.tools.fmt import format_source, without_spans
from specc.tools.text import tokens

GOLDEN = ROOT / "tests" / "golden"
MODELS = sorted((ROOT / "models").glob("*.net"))


def _checks(path: Path) -> bool:
    try:
        api.check_source(api.read(path))
    except SpeccError:
        return False
    return True


FORMATTABLE = [p for p in sorted(GOLDEN.glob("*.net")) if _checks(p)]


def test_there_are_golden_inputs_to_format():
    assert len(FORMATTABLE) >= 8


@pytest.mark.parametrize("path", FORMATTABLE + MODELS, ids=lambda p: p.name)
@pytest.mark.parametrize("annotate", [False, True])
def test_fmt_twice_is_fmt_once_and_the_network_is_unchanged(path: Path, annotate: bool):
    source = api.read(path)
    once = format_source(source, annotate=annotate)
    assert format_source(Source(source.name, once), annotate=annotate) == once
    assert without_spans(api.ir_document(Source(source.name, once))) == without_spans(api.ir_document(source))
    comments = [t.text.rstrip() for t in tokens(source.text) if t.type == "COMMENT"]
    kept = [t.text for t in tokens(once) if t.type == "COMMENT"]
    for c in comments:  # every comment survives, in order (annotations may be refreshed)
        assert any(c in k for k in kept) or "# -> (N" in c


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_models_are_formatted(model: Path):
    assert format_source(api.read(model)) == model.read_text(encoding="utf-8")


def test_comments_in_every_position():
    source = api.read(GOLDEN / "fmt_comments.net")
    out = format_source(source).splitlines()
    # each comment of the file, and the line of code it belongs to in the result
    expected = {
        "# header comment": "# header comment",
        "# second group": "# second group",
        "# size": "block Dense(n, p=0.1) = Affine(n)  # size",  # inside a parameter list
        "# trailing on block": "  -> ReLU  # trailing on block",
        "# the input": "input 784  # the input",
        "# after arrow": "Dense(100)  # after arrow",
        "# a full-line comment inside the chain": "  # a full-line comment inside the chain",
        "# inside args": "  -> Affine(10, init=he)  # inside args",  # inside an argument list
        "# last": "  -> SoftmaxWithLoss  # last",
        "# opening": "train {  # opening",
        "# before a setting": "  # before a setting",
        "# on batch": "  batch  = 10  # on batch",
        "# before the brace": "  # before the brace",
        "# after the brace": "}  # after the brace",
        "# at the end": "# at the end",
    }
    for comment, line in expected.items():
        assert line in out, comment
    assert out.index("  # a full-line comment inside the chain") == out.index("Dense(100)  # after arrow") + 1
    assert out[1] == "" and out[-1] == "# at the end"  # blank-line groups kept, in place
    assert out[out.index("  batch  = 10  # on batch") + 1] == ""


def test_short_chains_join_long_chains_split():
    one = format_source(Source("a.net", "input 784\nAffine(50)\n  -> ReLU\n->Affine(10)->SoftmaxWithLoss\n"))
    assert one == "input 784\nAffine(50) -> ReLU -> Affine(10) -> SoftmaxWithLoss\n"
    steps = " -> ".join(["Affine(100, init=xavier) -> Sigmoid"] * 3)
    long = f"input 784\n{steps} -> Affine(10) -> SoftmaxWithLoss"
    lines = format_source(Source("b.net", long)).splitlines()
    assert lines[1] == "Affine(100, init=xavier)" and lines[2] == "  -> Sigmoid" and len(lines) == 9


def test_crlf_tabs_and_spellings():
    text = "input\t784\r\nAffine( 10 ,init = 1e-2 , ) -> SoftmaxWithLoss\r\ntrain { lr = +0.5; batch = 1_000 }"
    assert format_source(Source("c.net", text)) == (
        "input 784\nAffine(10, init=1e-2) -> SoftmaxWithLoss\ntrain {\n  lr    = +0.5\n  batch = 1_000\n}\n")


def test_a_file_with_errors_is_refused():
    with pytest.raises(SpecError) as e:
        format_source(Source("bad.net", "input 784\nAfine(10) -> SoftmaxWithLoss\n"))
    assert e.value.diagnostics[0].code == "unknown-layer"


def test_annotations_are_refreshed_and_the_users_comments_kept():
    text = "input 784\nAffine(50)  # hidden  # -> (N, 7)  1 params\n  -> ReLU -> Affine(10) -> SoftmaxWithLoss\n"
    out = format_source(Source("d.net", text), annotate=True).splitlines()
    assert out[1] == "Affine(50)  # hidden  # -> (N, 50)  39,250 params  78,400 FLOPs"
    assert out[0] == "input 784             # -> (N, 784)"
    # once annotated, plain fmt keeps the figures fresh
    annotated = "\n".join(out) + "\n"
    assert format_source(Source("d.net", annotated.replace("39,250", "1"))) == annotated


def _run(*args: str) -> tuple[int, str, str]:
    out, err = (Console(file=io.StringIO(), width=100, color_system=None) for _ in range(2))
    code = cli.run(list(args), out, err)
    return code, out.file.getvalue(), err.file.getvalue()


def test_cli_writes_in_place_and_check_exits_1(tmp_path: Path):
    f = tmp_path / "m.net"
    f.write_text("Affine(784,10)->SoftmaxWithLoss\n", encoding="utf-8")
    assert _run("fmt", "--check", str(f))[0] == 1
    assert f.read_text(encoding="utf-8") == "Affine(784,10)->SoftmaxWithLoss\n"
    code, out, _ = _run("fmt", str(f))
    assert code == 0 and "1 file reformatted" in out
    assert f.read_text(encoding="utf-8") == "Affine(784, 10) -> SoftmaxWithLoss\n"
    assert _run("fmt", "--check", str(f))[0] == 0


def test_cli_models_are_clean():
    code, out, err = _run("fmt", "--check", *map(str, MODELS))
    assert (code, err) == (0, "") and f"0 files would be reformatted, {len(MODELS)} unchanged" in out
