"""What a person sees of the command line: help for every flag with its default and examples, the
commands listed, hints for near misses, titles that fit 80 columns, progress only on a terminal."""
from __future__ import annotations

import argparse
import io
import json
import re

import pytest
from helpers import MODELS, ROOT, new_console, run_cli
from rich.console import Console

from specc.cli import parser as cli_parser
from specc.cli.curveview import curve_chart
from specc.cli.trainview import _Clock, _clock
from specc.training.plot import caption, epoch_ticks

TWO = ROOT / "models" / "two_layer_net.net"
SCN = ROOT / "models" / "simple_conv_net.net"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    p = cli_parser.build(new_console(), new_console())
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_specc_alone_lists_every_command_with_one_line():
    r = run_cli()
    assert r.code == 2 and "arguments are required" not in r.err and r.out == ""
    for name in _subparsers():
        assert re.search(rf"^    {name} +\S", r.err, re.M), name


def test_a_mistyped_command_gets_the_nearest():
    r = run_cli("trian", "x.net")
    assert r.code == 2 and "did you mean 'train'?" in r.err and "choose from" not in r.err


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_every_flag_is_described_with_its_default_and_the_help_ends_with_examples(name):
    sub = _subparsers()[name]
    text = sub.format_help()
    assert re.search(r"examples?:\n  specc " + name, text)
    for action in sub._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{name} {action.dest}"
        takes_value = action.option_strings and action.nargs != 0
        if takes_value:
            helped = sub._get_formatter()._expand_help(action) if "%" in action.help else action.help
            formatted = cli_parser._Formatter("x")._get_help_string(action) % {"default": action.default}
            assert "default" in formatted or "required" in helped, f"{name} {action.option_strings}"


def test_the_readme_names_every_flag():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Commands"):]
    table = table[:table.index("\n\n", table.index("| --- |"))]
    for name, sub in _subparsers().items():
        starts = (f"| `specc {name} ", f"| `specc {name}`")
        row = next((line for line in table.splitlines() if line.startswith(starts)), None)
        assert row is not None, name
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in row, f"specc {name}: {flag} is not in the README's command table"


def test_check_takes_max_memory():
    assert run_cli("check", SCN, "--max-memory", "10G").code == 0
    r = run_cli("check", SCN, "--max-memory", "1M")
    assert r.code == 2 and "memory" in r.err and "Traceback" not in r.err


def test_bench_names_the_specs_optimizer_and_its_title_fits_80_columns():
    r = run_cli("bench", SCN, "--steps", "1", "--batch", "2", width=80)
    assert r.code == 0
    assert "Adam update" in r.out and "SGD" not in r.out
    assert all(len(line) <= 80 for line in r.out.splitlines()[2:])


def test_gradcheck_says_why_a_zero_gradient_passes(tmp_path):
    # the bias right before BatchNorm gets zero gradient: relative error 1, passing on the absolute bound
    spec = tmp_path / "bn.net"
    spec.write_text("input 6\nAffine(5) -> BatchNorm -> ReLU -> Affine(3) -> SoftmaxWithLoss\n")
    r = run_cli("gradcheck", spec)
    assert r.code == 0 and "PASS (abs)" in r.out and "(abs): a gradient of about zero" in r.out


def test_progress_is_shown_on_a_terminal_only():
    plain = run_cli("gradcheck", TWO, "--samples", "2")
    assert "checking" not in plain.out and "elapsed" not in plain.out
    out = Console(file=io.StringIO(), force_terminal=True, width=80)
    from specc import cli
    assert cli.run(["gradcheck", str(TWO), "--samples", "2"], out, new_console()) == 0


def test_training_at_80_columns(tmp_path):
    r = run_cli("train", TWO, "--epochs", "2", "--out", tmp_path / "run", width=80)
    assert r.code == 0, r.err
    lines = [line for line in r.out.splitlines() if str(tmp_path) not in line and "two_layer_net" not in line]
    assert all(len(line) <= 80 for line in lines), lines
    assert "by epoch" not in r.out  # the terminal curve is for terminals; a log gets nothing extra
    assert f"specc report {tmp_path / 'run'}" in r.out


def test_training_on_a_terminal_draws_the_curve(tmp_path):
    from specc import cli

    out = Console(file=io.StringIO(), force_terminal=True, width=80, color_system=None)
    assert cli.run(["train", str(TWO), "--epochs", "3", "--out", str(tmp_path / "run")], out, new_console()) == 0
    text = out.file.getvalue()
    assert "by epoch; ▲ the best test accuracy" in text and "loss  ● train  ■ test" in text


def test_the_terminal_curve_fits_its_width():
    records = [{"epoch": e, "loss": 2 / e, "test_loss": 2.1 / e, "train_acc": 1 - 0.5 / e,
                "test_acc": 1 - 0.6 / e if e != 4 else 0.99, "iteration": e * 10} for e in range(1, 9)]
    out = Console(file=io.StringIO(), width=80, color_system=None)
    out.print(curve_chart(records, 80))
    text = out.file.getvalue()
    assert all(len(line.rstrip()) <= 80 for line in text.splitlines())
    assert "at epoch 4" in text and "▲" in text


def test_the_bars_clock_estimates_from_the_first_steps():
    clock = _Clock(batch=100)
    clock.start(0)
    clock.began -= 2.0  # two seconds for the first 10 of 100 steps
    fields = clock.fields(10, 100)
    assert fields["left"] == "0:18" and fields["speed"] == "500 samples/s" and fields["elapsed"] == "0:02"
    assert _clock(3725) == "1:02:05" and clock.fields(0, 100)["left"] == "-:--"


def test_epoch_ticks_hold_the_first_and_last():
    assert epoch_ticks([1, 2, 3]) == [1, 2, 3]
    for last in (11, 20, 37, 100):
        ticks = epoch_ticks(list(range(1, last + 1)))
        assert ticks[0] == 1 and ticks[-1] == last and len(ticks) <= 10


def test_the_curves_caption_names_optimizer_rate_and_data():
    config = {"settings": {"optimizer": "Adam", "optimizer_args": {"lr": 0.001}, "batch": 100},
              "data": {"name": "mnist-5k", "train": 4000, "test": 1000}}
    assert caption([{"lr": 0.001}], config) == "Adam, lr 0.001, batch 100; mnist-5k (4,000 train / 1,000 test)"


def test_every_model_has_help_examples_that_exist():
    # the examples name models that are in the repository
    names = {m.name for m in MODELS} | {"apple.net"}
    for sub in _subparsers().values():
        for model in re.findall(r"models/(?:graphs/)?([\w.]+\.net)", sub.epilog or ""):
            assert model in names, model


def test_json_output_is_untouched_by_progress():
    r = run_cli("summary", TWO, "--json")
    json.loads(r.out)


def test_a_one_epoch_curve_spans_a_readable_accuracy_range():
    """One epoch's train and test accuracy 5e-5 apart filled the axis with 0.97640 ... 0.97645; the
    axis now spans at least 0.01 around them (and stops just above 1 for a perfect score)."""
    pytest.importorskip("matplotlib")
    from specc.training.plot import ACCURACY_SPAN, curve_figure

    record = {"epoch": 1, "loss": 1.5, "train_loss": 0.14, "test_loss": 0.142, "train_acc": 0.97645,
              "test_acc": 0.9764}
    low, high = curve_figure([record], "dcn on mnist").axes[1].get_ylim()
    assert high - low == pytest.approx(ACCURACY_SPAN) and low < 0.9764 < 0.97645 < high
    low, high = curve_figure([{**record, "test_acc": 0.9995}], "nearly perfect").axes[1].get_ylim()
    assert low < 0.97645 and 0.9995 < high <= 1.0025
    high = curve_figure([{**record, "train_acc": 1.0, "test_acc": 1.0}], "perfect").axes[1].get_ylim()[1]
    assert high == 1.0025
    many = [{**record, "epoch": e, "train_acc": 0.9 + e / 100, "test_acc": 0.9 + e / 120} for e in range(1, 6)]
    low, high = curve_figure(many, "five epochs").axes[1].get_ylim()
    assert high - low > 0.04  # a real range keeps matplotlib's own limits
