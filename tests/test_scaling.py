"""Scale on paper (specc.scaling, `specc plan`): the ring-allreduce model against figures worked out
by hand, and the command's measured path."""
from __future__ import annotations

import json

import pytest
from helpers import ROOT, run_cli

from specc import scaling
from specc.scaling import Link


def test_the_model_against_numbers_worked_by_hand():
    # 1e6 float32 parameters on 4 workers: each sends 2*3/4 * 4e6 B = 6e6 B = 48e6 bit; at 10 Gbit/s 4.8 ms
    e = scaling.estimate(1_000_000, 4, batch=100, step_ms=20.0, fixed_ms=0.0, workers=4, link=Link(10, 0))
    assert e.sent_bytes == pytest.approx(6e6) and e.comm_ms == pytest.approx(4.8)
    assert e.compute_ms == pytest.approx(5.0) and e.speedup == pytest.approx(20 / 9.8)
    # 0.2 ms per sample: at batch 96 one process takes 19.2 ms, 4 workers 4.8 + 4.8 ms: 2x, efficiency 50%
    assert e.half_batch == pytest.approx(96)
    # at batch 32: 6.4 ms alone, 1.6 + 4.8 ms on 4 workers: no gain at all
    assert e.even_batch == pytest.approx(32)
    # latency: 2(N-1) = 6 messages of 25 us add 0.15 ms
    slow = scaling.estimate(1_000_000, 4, 100, 20.0, 0.0, 4, Link(10, 25))
    assert slow.comm_ms == pytest.approx(4.95)


def test_the_fixed_part_is_not_shared():
    # a 10 ms step of which 2 ms update, 2 workers, 1 ms of comm (each sends 4e5 B = 3.2e6 bit: 1 ms at 3.2 Gbit/s)
    e = scaling.estimate(100_000, 4, batch=100, step_ms=10.0, fixed_ms=2.0, workers=2, link=Link(3.2, 0))
    assert e.comm_ms == pytest.approx(1.0)
    assert e.compute_ms == pytest.approx(6.0) and e.speedup == pytest.approx(10 / 7)
    # at batch 25: 25 x 0.08 + 2 = 4 ms alone; 1 + 2 + 1 = 4 ms on two workers: efficiency 50%
    assert e.half_batch == pytest.approx(25)


def test_a_sharded_update_divides_over_the_workers():
    # the same 10 ms step, its 2 ms fixed part 1.5 ms of update that 4 workers divide (specc train
    # shards it from SHARD_FROM parameters): each pays 0.5 + 1.5 / 4 = 0.875 ms; comm 2*3/4 * 4e5 B
    # = 4.8e6 bit at 3.2 Gbit/s = 1.5 ms
    e = scaling.estimate(100_000, 4, batch=100, step_ms=10.0, fixed_ms=2.0, workers=4, link=Link(3.2, 0),
                         sharded_ms=1.5)
    assert e.comm_ms == pytest.approx(1.5) and e.compute_ms == pytest.approx(8 / 4 + 0.875)
    assert e.speedup == pytest.approx(10 / 4.375)
    # at batch 68.75: 2 + 5.5 = 7.5 ms alone, 0.875 + 5.5 / 4 + 1.5 = 3.75 ms on four: efficiency 50%
    assert e.half_batch == pytest.approx(68.75)
    # the plan shards from SHARD_FROM parameters, as training does, and never more than the fixed part
    at = scaling.plan(scaling.SHARD_FROM, 1000, 4, 100, 10.0, 2.0, False, (4,), (Link(3.2, 0),), update_ms=1.5)
    below = scaling.plan(scaling.SHARD_FROM - 1, 1000, 4, 100, 10.0, 2.0, False, (4,), (Link(3.2, 0),),
                         update_ms=1.5)
    assert at.sharded_ms == 1.5 and below.sharded_ms == 0.0
    assert at.estimates[0].compute_ms == pytest.approx(2.875) and below.estimates[0].compute_ms == pytest.approx(4.0)
    assert scaling.plan(200_000, 1000, 4, 100, 10.0, 1.0, False, update_ms=1.5).sharded_ms == 1.0


def test_the_fixed_part_is_the_intercept_of_two_steps():
    # 10 ms at batch 100, 4 ms at batch 25: 0.08 ms per sample, and 2 ms that no batch shrinks
    assert scaling.fixed_part(100, 10.0, 25, 4.0) == pytest.approx(2.0)
    assert scaling.fixed_part(100, 10.0, 25, 1.0) == 0.0  # (noise below the line through 0: nothing fixed)
    assert scaling.fixed_part(100, 10.0, 25, 12.0) < 10.0  # (a slower small batch: not all of the step)


def test_plan_measures_a_step_when_none_is_given():
    r = run_cli("plan", ROOT / "models" / "two_layer_net.net", "--workers", "2,4", "--link", "10:25", "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["measured"] and doc["step_ms"] > 0 and doc["parameters"] == 39_760
    assert [e["workers"] for e in doc["estimates"]] == [2, 4]
    assert doc["estimates"][0]["link"] == {"gbit": 10.0, "latency_us": 25.0, "name": "10 Gbit/s, 25 µs"}


@pytest.mark.parametrize("argv, message", [
    (["--link", "fast"], "not a link: fast"),
    (["--workers", "1"], "a number of workers of at least 2"),
    (["--step-ms", "1", "--fixed-ms", "2"], "must be a part of the step"),
])
def test_plan_refuses_what_it_cannot_model(argv, message):
    r = run_cli("plan", ROOT / "models" / "two_layer_net.net", *argv)
    assert r.code == 2 and message in r.err
