"""The command line, through `specc.cli.run(argv, stdout, stderr) -> exit code`: exit codes, every
model and example, unreadable files, the IR round trip and `specc schema`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from helpers import MODELS, new_console
from rich.console import Console
from spec_examples import NETWORKS

import specc
from specc import cli, ir
from specc.schema import build_schema


class Result:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


def _console() -> Console:
    return new_console(100)


def specc_run(*argv) -> Result:
    out, err = _console(), _console()
    code = cli.run([str(a) for a in argv], out, err)
    return Result(code, out.file.getvalue(), err.file.getvalue())


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


# --- exit codes --------------------------------------------------------------------------------

def test_models_exist():
    assert len(MODELS) >= 3


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_every_model_checks_and_summarises(model):
    r = specc_run("check", model)
    assert (r.code, r.err) == (0, "")
    assert r.out.startswith(f"{model}: ok (")
    r = specc_run("summary", model)
    assert (r.code, r.err) == (0, "")
    assert "total" in r.out


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_design_example_checks(tmp_path, name):
    path = write(tmp_path, f"{name}.net", NETWORKS[name])
    r = specc_run("check", path)
    assert (r.code, r.err) == (0, "")


def test_check_several_files_reports_each_and_fails_if_any_fails(tmp_path):
    good = write(tmp_path, "good.net", NETWORKS["two_layer"])
    bad = write(tmp_path, "bad.net", "input 784\nAffine(100, 10) -> SoftmaxWithLoss\n")
    r = specc_run("check", good, bad, good)
    assert r.code == 2
    assert r.out.count("ok (4 layers, 39,760 parameters)") == 2
    assert r.err.startswith(f"{bad}:2:8: error: Affine expects 100 inputs per sample")


def test_spec_errors_exit_2(tmp_path):
    path = write(tmp_path, "bad.net", "Afine(10)")
    for command in (["check"], ["summary"], ["compile"], ["compile", "--emit", "json"]):
        r = specc_run(*command, path)
        assert r.code == 2 and r.out == ""
        assert r.err.startswith(f"{path}:1:1: error: unknown layer 'Afine' [unknown-layer]\n")


@pytest.mark.parametrize("argv", [[], ["check"], ["frobnicate"], ["compile", "x.net", "--emit", "c++"],
                                  ["summary", "a.net", "b.net"]])
def test_usage_errors_exit_2(argv):
    r = specc_run(*argv)
    assert r.code == 2 and "usage:" in r.err and r.out == ""


def test_help_and_version_exit_0():
    assert specc_run("--help").code == 0
    r = specc_run("--version")
    assert r.code == 0 and f"specc {specc.__version__}" in r.out


# --- files that cannot be read ----------------------------------------------------------------------

@pytest.mark.parametrize("name, content, first_line", [
    ("empty.net", "", "{p}: error: the file is empty; it defines no network [empty]"),
    ("blank.net", "\n  \n\t\n", "{p}: error: the file is empty; it defines no network [empty]"),
    ("comments.net", "# a model\n\n   # to be written\n",
     "{p}: error: the file holds only comments; it defines no network [empty]"),
    ("binary.net", b"Affine(784,50)\x00\x01\x02", "{p}:1:15: error: '{p}' is not a text file: it contains a NUL "
                                                 "byte [not-text]"),
    ("latin1.net", "# caf\u00e9\nReLU\n".encode("latin-1"),
     "{p}:1:6: error: '{p}' is not a text file: byte 0xe9 is not valid UTF-8 [not-text]"),
    ("weights.npz", b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x9c\xff",
     "{p}:1:6: error: '{p}' is not a text file: it contains a NUL byte [not-text]"),
    ("utf16.net", "ReLU".encode("utf-16"), "{p}:1:1: error: '{p}' is not a text file: byte 0xff is not valid "
                                           "UTF-8 [not-text]"),
    ("bad.json", '{"version": 1,\n "layers": [}\n', "{p}:2:13: error: not valid JSON: Expecting value [bad-json]"),
    ("list.json", "[1, 2]", "{p}:1:1: error: an IR document is a JSON object ({{...}}) [bad-ir]"),
])
def test_unusable_files_give_one_clear_line(tmp_path, name, content, first_line):
    path = write(tmp_path, name, content)
    for command in ("check", "summary", "compile"):
        r = specc_run(command, path)
        assert r.code == 2
        assert r.out == ""
        assert r.err.splitlines()[0] == first_line.format(p=path)
        assert "Traceback" not in r.err


def test_missing_file(tmp_path):
    path = tmp_path / "missing.net"
    r = specc_run("check", path)
    assert (r.code, r.out) == (2, "")
    assert r.err == (f"{path}: error: no such file: '{path}' [no-file]\n"
                     "  help: check the path; spec files usually end in .net or .json\n\n")


def test_a_folder_is_not_a_spec_file(tmp_path):
    r = specc_run("check", tmp_path)
    assert r.code == 2 and r.err == f"{tmp_path}: error: '{tmp_path}' is a folder, not a spec file [no-file]\n\n"


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = write(tmp_path, "bom.net", b"\xef\xbb\xbf" + NETWORKS["two_layer"].encode())
    assert specc_run("check", path).code == 0


def test_crlf_file(tmp_path):
    path = write(tmp_path, "crlf.net", NETWORKS["conv"].replace("\n", "\r\n"))
    assert specc_run("check", path).code == 0
    bad = write(tmp_path, "crlf_bad.net", "input 784\r\n\tAffine(100, 10) -> SoftmaxWithLoss\r\n")
    r = specc_run("check", bad)
    assert r.err.splitlines()[:5] == [
        f"{bad}:2:9: error: Affine expects 100 inputs per sample, but receives 784 [shape]",
        "1 | input 784",
        "  | --------- declared (N, 784)",
        "2 |     Affine(100, 10) -> SoftmaxWithLoss",
        "  |            ^^^ expects (N, 100)",
    ]


def test_the_installed_command_never_shows_a_traceback(tmp_path):
    binary = write(tmp_path, "weights.net", bytes(range(256)))
    missing = tmp_path / "missing.net"
    done = subprocess.run([sys.executable, "-m", "specc", "check", str(binary), str(missing)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("error:") == 2


# --- the IR round trip ------------------------------------------------------------------------------

def _compile_to_json(source: Path, tmp_path: Path) -> Path:
    r = specc_run("compile", source, "--emit", "json")
    assert (r.code, r.err) == (0, "")
    path = tmp_path / (source.stem + ".json")
    path.write_text(r.out, encoding="utf-8")
    return path


def _sources(tmp_path: Path) -> list[Path]:
    return MODELS + [write(tmp_path, f"{k}.net", v) for k, v in sorted(NETWORKS.items())]


def test_compile_emits_the_ir_document(tmp_path):
    for source in _sources(tmp_path):
        r = specc_run("compile", source)
        doc = json.loads(r.out)
        assert doc == specc.ir_document(specc.read(source))
        assert doc["version"] == 1 and doc["source"] == str(source)
        jsonschema.validate(doc, build_schema(), cls=jsonschema.Draft202012Validator)


def test_round_trip_net_to_json_gives_the_same_network_and_summary(tmp_path):
    for source in _sources(tmp_path):
        as_json = _compile_to_json(source, tmp_path)
        net_doc = specc.ir_document(specc.read(source))
        json_doc = specc.ir_document(specc.read(as_json))
        assert ir.from_json(json_doc) == ir.from_json(net_doc)
        assert ir.to_json(ir.from_json(net_doc)) == net_doc
        assert specc.check_file(as_json).network == specc.check_file(source).network

        r = specc_run("check", as_json)
        assert (r.code, r.err) == (0, "")
        from_net, from_json = specc_run("summary", source, "--json"), specc_run("summary", as_json, "--json")
        assert json.loads(from_json.out) == json.loads(from_net.out)
        # the table too, but for its title (which names the file)
        assert specc_run("summary", as_json).out == specc_run("summary", source).out


def test_a_json_spec_without_a_json_suffix_is_recognised(tmp_path):
    as_json = _compile_to_json(MODELS[0], tmp_path)
    other = write(tmp_path, "model.ir", as_json.read_text())
    assert specc_run("check", other).code == 0


BAD_IR = """\
{
  "version": 1,
  "input": {"shape": [1, 28, 28]},
  "layers": [
    {"type": "Convolution",
     "args": {"filters": 30, "kernel": -5, "stride": 1, "pad": 0, "init": "auto"}},
    {"type": "ReLU", "args": {}},
    {"type": "Affine", "args": {"in": null, "out": 10, "init": "he"}},
    {"type": "SoftmaxWithLoss", "args": {}}
  ],
  "train": {"batch": 0}
}
"""


def test_a_bad_json_ir_file_reports_errors_at_the_json_files_line_and_column(tmp_path):
    path = write(tmp_path, "bad.json", BAD_IR)
    r = specc_run("check", path)
    assert r.code == 2
    lines = r.err.splitlines()
    assert lines[0] == (f"{path}:6:30: error: Convolution: 'kernel' expects a positive integer "
                        "(the kernel's height and width), but received -5 [bad-arg]")
    assert lines[1] == '6 |      "args": {"filters": 30, "kernel": -5, "stride": 1, "pad": 0, "init": "auto"}},'
    assert lines[2] == "  |                              ^^^^^^^^^^^^"
    assert f"{path}:11:13: error: train setting 'batch' expects a positive integer, but received 0" in r.err


def test_a_shape_error_in_a_json_ir_file_points_into_the_json(tmp_path):
    doc = json.loads(BAD_IR)
    doc["layers"][0]["args"]["kernel"] = 5
    doc["layers"][2]["args"]["in"] = 100
    del doc["train"]
    path = write(tmp_path, "shape.json", json.dumps(doc, indent=1))
    r = specc_run("check", path)
    assert r.code == 2
    assert r.err.splitlines()[:7] == [
        f"{path}:28:5: error: Affine expects 100 inputs per sample, but receives 30 x 24 x 24 = 17280 [shape]",
        "21 |   {",
        "   |   - produces (N, 30, 24, 24)",
        "   ...",
        '28 |     "in": 100,',
        "   |     ^^^^^^^^^ expects (N, 100)",
        "  help: write `Affine(10)` to let specc infer the input size",
    ]


@pytest.mark.parametrize("text, where, hint", [
    ('{"version": 1,\n "layers": [\n  {"type": "ReLU", "args": {}},\n ]\n}', ":4:2:", "no comma after the last"),
    ('{"version": 1, "layers": [],}', ":1:29:", "no comma after the last"),
    ("{'version': 1}", ":1:2:", "double quotes"),
])
def test_json_syntax_errors_have_hints(tmp_path, text, where, hint):
    path = write(tmp_path, "bad.json", text)
    r = specc_run("check", path)
    assert r.code == 2 and f"{path}{where} error: not valid JSON" in r.err
    assert hint in r.err.splitlines()[-2]


@pytest.mark.parametrize("doc, first", [
    ('{"version": 1, "layers": [[]]}', "invalid IR at layers/0: [] is not of type 'object'"),
    ('{"version": 1, "layers": [{"type": "Affine", "args": 5}, {"type": "SoftmaxWithLoss", "args": {}, "span": 3}]}',
     "invalid IR at layers/0/args: 5 is not of type 'object'"),
    ('{"version": 1, "layers": [{"type": "ReLU", "args": {}}], "train": {"optimizer": "adam", "key_spans": 1}}',
     "cannot tell the input shape of the first layer, ReLU"),
    ('{"version": 1, "layers": [{"type": "ReLU", "args": {}}], "train": 5}', "invalid IR at train"),
    ('{"layers": [], "version": "x", "input": [1]}', "unsupported IR version 'x'"),
    ('{"version": 1, "layers": ' + "[" * 300 + "]" * 300 + "}", "invalid IR at layers/0"),
    ('{"version": 1, "layers": ' + "[" * 5000 + "]" * 5000 + "}", "the JSON nests too deeply"),
])
def test_malformed_json_ir_never_crashes(tmp_path, doc, first):
    # Regression: a layer that is not an object, or a malformed span, crashed the typed IR.
    path = write(tmp_path, "odd.json", doc)
    r = specc_run("check", path)
    assert r.code == 2 and "Traceback" not in r.err
    assert first in r.err


def test_unknown_layer_in_json_is_not_also_reported_as_a_missing_loss(tmp_path):
    path = write(tmp_path, "odd.json", '{"version": 1, "input": {"shape": [4]}, "layers": ['
                                       '{"type": "Affine", "args": {"in": null, "out": 2, "init": "auto"}},'
                                       '{"type": "SoftmaxWithLos", "args": {}}]}')
    r = specc_run("check", path)
    assert r.err.count("error:") == 1 and "unknown layer 'SoftmaxWithLos'" in r.err


def test_unsupported_ir_version(tmp_path):
    path = write(tmp_path, "v2.json", '{"version": 2, "layers": []}')
    r = specc_run("check", path)
    assert r.err.splitlines()[0] == (f"{path}:1:2: error: unsupported IR version 2; "
                                     "this specc reads version 1 [bad-ir]")


# --- the schema command --------------------------------------------------------------------------------

def test_schema_prints_valid_json():
    r = specc_run("schema")
    assert (r.code, r.err) == (0, "")
    schema = json.loads(r.out)
    assert schema == build_schema()
    jsonschema.Draft202012Validator.check_schema(schema)


def test_usage_errors_and_help_go_to_the_given_consoles():
    r = specc_run("train")
    assert r.code == 2 and r.out == ""
    assert "specc train: error: the following arguments are required: FILE" in r.err
    r = specc_run("check", "--help")
    assert r.code == 0 and r.out.startswith("usage: specc check") and r.err == ""
    r = specc_run("train", "m.net", "--epochs", "0")
    assert r.code == 2 and "must be a positive integer, not 0" in r.err
