"""`specc compare` and `specc sweep` on the embedded sample: variants share data, order and seed;
a sweep scores on a validation split, writes its best settings as a train section, and resumes
without rerunning a finished trial."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import MODELS, ROOT, run_cli

from specc import api
from specc.errors import UsageError
from specc.training import compare, ranges, sweep
from specc.training.events import Step

MLP = ROOT / "models" / "mlp_4x100.net"
SIX = ROOT / "models" / "mlp_6x100.net"


def _last(events):
    *_, last = events
    return last


def test_compare_trains_each_variant_on_the_same_data_order(tmp_path):
    orders, first_losses = [], []
    result = None
    current = None
    for event in api.comparison([MLP], out=tmp_path / "cmp", optimizer="SGD,Adam", iters=6, batch=50):
        if isinstance(event, compare.Begun):
            current = event.trainer
        elif isinstance(event, Step) and event.iteration == 1:
            orders.append(current.order.copy())
            first_losses.append(event.loss)
        elif isinstance(event, compare.Comparison):
            result = event
    assert [o.variant.name for o in result.outcomes] == ["SGD", "Adam"]
    assert np.array_equal(orders[0], orders[1])
    # the same seed: the same initial weights, so the first step (before any update) has one loss
    assert first_losses[0] == pytest.approx(first_losses[1], rel=1e-6)
    assert [len(o.losses) for o in result.outcomes] == [6, 6]
    for o in result.outcomes:
        assert (o.folder / "config.json").is_file() and (o.folder / "metrics.jsonl").is_file()
        assert o.folder.parent == tmp_path / "cmp"
    doc = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [v["settings"] for v in doc["variants"]] == ["SGD lr=0.01", "Adam lr=0.001"]
    assert result.plot == tmp_path / "cmp" / "compare.png" and result.plot.stat().st_size > 0


def test_compare_cli_prints_one_row_per_variant(tmp_path):
    r = run_cli("compare", MLP, "--optimizer", "sgd,momentum", "--iters", 4, "--loss-at", 3,
                "--train-size", 200, "--eval-sample", 100, "--out", tmp_path / "c", width=160)
    assert r.code == 0, r.err
    rows = [line for line in r.out.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["SGD", "Momentum"]
    assert "loss at 3" in r.out and "compare.png" in r.out
    config = json.loads((tmp_path / "c" / "01-SGD" / "config.json").read_text())
    assert config["data"]["train"] == 200 and config["settings"]["eval_sample"] == 100


def test_compare_init_overrides_every_layer(tmp_path):
    result = _last(api.comparison([MLP], out=tmp_path / "c", init="std=0.01,he", iters=2))
    assert [o.variant.name for o in result.outcomes] == ["init=0.01", "init=he"]
    doc = json.loads((result.outcomes[0].folder / "model.json").read_text())
    inits = [layer["args"]["init"] for layer in doc["layers"] if "init" in layer["args"]]
    assert inits == [0.01] * 5


def test_compare_of_two_specs_names_them(tmp_path):
    pair = [ROOT / "models" / "multi_layer_net_extend.net", ROOT / "models" / "mlp_5x100.net"]
    result = _last(api.comparison(pair, out=tmp_path / "c", init="1..0.01:log:2", iters=2))
    assert [o.variant.name for o in result.outcomes] == [
        "multi_layer_net_extend init=1", "multi_layer_net_extend init=0.01", "mlp_5x100 init=1", "mlp_5x100 init=0.01"]
    # the book's batch_norm_test.py figure: a panel per weight scale, in each a line per spec
    assert [(label, [spec for spec, _ in lines]) for label, lines in compare.panels(result.outcomes)] == [
        ("init=1", ["multi_layer_net_extend", "mlp_5x100"]), ("init=0.01", ["multi_layer_net_extend", "mlp_5x100"])]
    assert result.grid == tmp_path / "c" / compare.GRID and result.grid.stat().st_size > 0


def test_a_comparison_of_one_setting_or_few_variants_draws_no_grid(tmp_path):
    result = _last(api.comparison([MLP], out=tmp_path / "c", optimizer="SGD,Adam", iters=2))
    assert compare.panels(result.outcomes) == [] and result.grid is None
    assert not (tmp_path / "c" / compare.GRID).exists()


@pytest.mark.parametrize("argv, message", [
    (["--optimizer", "SGD,Adamm"], "unknown optimizer 'Adamm'"),
    (["--weight-decay", "0,x"], "'x' is not a number"),
    (["--init", "1e-6..1e-2:log"], "compare trains a list of values"),
])
def test_compare_refuses_bad_lists_before_training(tmp_path, argv, message):
    r = run_cli("compare", MLP, *argv, "--out", tmp_path / "c")
    assert r.code == 2 and message in r.err and "Traceback" not in r.err
    assert not (tmp_path / "c").exists()


def test_ranges():
    r = ranges.parse("lr", "1e-6..1e-2:log")
    draws = [r.draw(np.random.default_rng(k)) for k in range(200)]
    assert all(1e-6 <= d <= 1e-2 for d in draws)
    assert sum(d < 1e-4 for d in draws) > 60  # log-uniform: half the draws below the geometric middle
    assert ranges.parse("init", "1..1e-4:log:5").grid() == pytest.approx([1, 0.1, 0.01, 1e-3, 1e-4])
    assert ranges.listed("init", "std=0.01,Xavier,he", ranges.init_value) == [0.01, "xavier", "he"]
    with pytest.raises(UsageError):
        ranges.parse("lr", "0..1:log")


def test_sweep_grid_tries_every_combination():
    trials = sweep.plan([ranges.parse("lr", "0.1,0.01"), ranges.parse("weight_decay", "0..1e-4:3")], None, 0)
    assert [dict(t.values) for t in trials][:2] == [{"lr": 0.1, "weight_decay": 0.0}, {"lr": 0.1, "weight_decay": 5e-5}]
    assert len(trials) == 6


def test_a_sweep_with_a_seed_per_trial_scores_every_trial_on_the_same_held_out_samples(tmp_path):
    """--seed-per-trial: the book's trials each start from fresh weights; the validation split must not
    move with them (a trial's score would then be of other samples)."""
    events = list(api.sweeping(SIX, out=tmp_path / "s", lr="1e-3..1e-2:log", trials=3, epochs=1, train_size=200,
                               seed=4, seed_per_trial=True))
    result = events[-1]
    seeds = [r.trial.values["seed"] for r in sorted(result.ranked, key=lambda r: r.trial.index)]
    assert len(set(seeds)) == 3 and 4 not in seeds
    assert seeds == [t.values["seed"] for t in sweep.plan([ranges.parse("lr", "1e-3..1e-2:log")], 3, 4, seeds=4)]
    trainers = [e.trainer for e in events if isinstance(e, sweep.TrialBegun)]
    held = [t.data.x_test for t in trainers]
    assert all(np.array_equal(h, held[0]) for h in held) and len(held[0]) == 40
    assert [t.s.seed for t in trainers] == seeds and {t.s.split_seed for t in trainers} == {4}
    alone = _last(api.sweeping(SIX, out=tmp_path / "one", lr="1e-3..1e-2:log", trials=3, epochs=1,
                               train_size=200, seed=4))
    assert {r.settings["seed"] for r in alone.ranked} == {4}  # without it, every trial has the sweep's seed


def test_sweep_resumes_without_rerunning_a_finished_trial(tmp_path):
    folder = tmp_path / "sw"
    finished: list[int] = []

    def stop():  # interrupt the sweep once its first trial is done (as Ctrl-C would)
        return len(finished) >= 1

    flags = dict(lr="1e-3..1e-1:log", weight_decay="1e-8..1e-4:log", trials=3, epochs=2, train_size=300,
                 validation=0.2)
    for event in api.sweeping(SIX, out=folder, stop=stop, **flags):
        if isinstance(event, sweep.TrialFinished):
            finished.append(event.result.trial.index)
        last = event
    assert finished == [0] and last.interrupted and len(last.ranked) == 1
    first = folder / "trial-001" / "weights.npz"
    stamp = first.stat().st_mtime_ns

    begun = []
    for event in api.sweeping(None, resume=folder):
        if isinstance(event, sweep.TrialBegun):
            begun.append(event.trial.index)
        last = event
    assert begun == [1, 2] and last.resumed == 1 and not last.interrupted
    assert first.stat().st_mtime_ns == stamp
    assert len((folder / "trials.jsonl").read_text().splitlines()) == 3
    assert [r.score for r in last.ranked] == sorted((r.score for r in last.ranked), reverse=True)
    # every trial was scored on 60 of the 300 training samples, never on the test set
    config = json.loads((folder / "trial-002" / "config.json").read_text())
    assert (config["data"]["train"], config["data"]["test"]) == (240, 60)
    # the best settings are a train section the spec accepts
    block = (folder / "best.train").read_text()
    spec = SIX.read_text().split("train {")[0] + block
    assert api.check_text(spec).network.train is not None
    assert f"lr={last.ranked[0].trial.values['lr']:g}" in block


def test_sweep_cli_ranks_trials_and_a_requeued_resume_is_a_no_op(tmp_path):
    r = run_cli("sweep", SIX, "--lr", "0.01,0.1", "--epochs", 1, "--train-size", 200, "--out", tmp_path / "s",
                width=160)
    assert r.code == 0, r.err
    rows = [line.split("│") for line in r.out.splitlines() if line.startswith("│")]
    assert [row[1].strip() for row in rows] == ["1", "2"] and (tmp_path / "s" / "best.train").is_file()
    assert {row[3].strip() for row in rows} == {"0.01", "0.1"}
    again = run_cli("sweep", "--resume", tmp_path / "s", width=160)
    assert again.code == 0 and "2 trials were finished before" in again.out and "[1/2]" not in again.out


def test_sweep_refuses_a_folder_holding_a_sweep(tmp_path):
    run_cli("sweep", SIX, "--lr", "0.01", "--epochs", 1, "--train-size", 100, "--out", tmp_path / "s")
    r = run_cli("sweep", SIX, "--lr", "0.01", "--epochs", 1, "--out", tmp_path / "s")
    assert r.code == 2 and "holds an earlier sweep" in r.err


def test_new_models_are_listed():
    names = {p.stem for p in MODELS}
    assert {"mlp_4x100", "mlp_5x100", "mlp_6x100", "mlp_6x100_dropout", "multi_layer_net_extend"} <= names


def test_a_diverging_variant_is_a_row_not_the_end(tmp_path):
    result = _last(api.comparison([ROOT / "models" / "mlp_5x100.net"], out=tmp_path / "c", init="10,he", lr="1",
                                  iters=8))
    first, second = result.outcomes
    assert first.failed is not None and "NaN or infinity" in first.failed
    assert second.failed is None and second.final["iteration"] == 8
