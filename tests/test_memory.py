"""The memory budget: estimates from shapes, and refusal before anything is allocated."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import specc
from specc.compiler import plan
from specc.memory import estimate, parse_size
from specc.training.optimizers import make_optimizer

MODELS = Path(__file__).parent.parent / "models"

HUGE = "input 784\nAffine(1000000) -> ReLU -> Affine(100000) -> Affine(10) -> SoftmaxWithLoss"


def test_estimate_counts_parameters_gradients_and_buffers():
    net = specc.check_text("Affine(784,50) -> ReLU -> Affine(50,10) -> SoftmaxWithLoss")
    e = estimate(plan(net), batch=100, itemsize=4, optimizer_slots=0)
    # value, gradient and optimizer scratch for each of the 39,760 parameters
    assert e.parameters == 39_760 * 3 * 4
    # outputs a1 (N,50), a3 (N,10), probs (N,10); gradients d1, d2 (N,50), d3 (N,10): 180 per sample;
    # and the loss's label positions (N,) in intp, 8 bytes each
    assert e.activations == 100 * 180 * 4 + 100 * 8
    assert e.total == e.parameters + e.activations


def test_a_network_too_big_for_the_budget_is_refused_before_allocation():
    tracemalloc.start()
    try:
        with pytest.raises(specc.SpecError) as info:
            specc.compile(HUGE, name="huge.net")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (d,) = info.value.diagnostics
    assert d.code == "too-much-memory" and "TiB" in d.message and "budget" in d.message
    assert d.span.line == 2 and d.label.startswith("Affine(1000000, 100000) needs")
    assert peak < 50 * 1024**2  # nothing near the size of the network was allocated


def test_the_budget_can_be_raised_or_lowered():
    text = "Affine(784,50) -> ReLU -> Affine(50,10) -> SoftmaxWithLoss"
    with pytest.raises(specc.SpecError):
        specc.compile(text, max_memory=100_000)
    assert specc.compile(text, max_memory=parse_size("1M")).params["W1"].shape == (784, 50)


def test_environment_budget(monkeypatch):
    monkeypatch.setenv("SPECC_MAX_MEMORY", "10K")
    with pytest.raises(specc.SpecError):
        specc.compile("Affine(784,50) -> ReLU -> Affine(50,10) -> SoftmaxWithLoss")


@pytest.mark.parametrize("text,value", [("512M", 512 * 1024**2), ("2G", 2 * 1024**3), ("1.5GiB", int(1.5 * 1024**3)),
                                        ("1000", 1000), ("64kb", 64 * 1024)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_parse_size_refuses_nonsense():
    with pytest.raises(specc.UsageError):
        parse_size("lots")


def test_check_refuses_what_training_could_not_fit(tmp_path):
    import io

    from rich.console import Console

    from specc import cli
    path = tmp_path / "huge.net"
    path.write_text(HUGE)
    out = Console(file=io.StringIO(), width=120, color_system=None)
    err = Console(file=io.StringIO(), width=120, color_system=None)
    assert cli.run(["check", str(path)], out, err) == 2
    assert "[too-much-memory]" in err.file.getvalue()
    assert cli.run(["summary", str(path)], out, err) == 0  # the figures are still there to look at


# A fused training step allocates no array: every buffer is planned once per batch size. What
# tracemalloc still sees during a step are Python objects (views, frames) and NumPy's own ufunc
# iteration buffers, which np.setbufsize bounds (8,192 elements by default: up to 98 KiB for
# DeepConvNet's broadcasting adds; at 16 elements 2.7 to 3.9 KiB for these four networks). With
# the buffers that small, a temporary array of a step's smallest real size, (100, 50) float32 =
# 20 KB, would stand out.
STEP_ALLOCATION_LIMIT = 8 * 1024


@pytest.mark.parametrize("model", ["two_layer_net", "multi_layer_net", "simple_conv_net", "deep_conv_net"])
def test_a_fused_training_step_allocates_no_array(model):
    net = specc.load(MODELS / f"{model}.net")
    rng = np.random.default_rng(0)
    x = rng.random((100, *net.input_shape), dtype=np.float32)
    t = rng.integers(0, 10, 100)
    opt = make_optimizer("Adam", {"lr": 0.001}, net.parameters())
    old = np.setbufsize(16)
    try:
        for _ in range(2):  # the first steps allocate the workspace and the optimizer's slots
            net.backward(x, t)
            opt.step(0.001)
        tracemalloc.start()
        try:
            net.backward(x, t)
            opt.step(0.001)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        np.setbufsize(old)
    assert peak < STEP_ALLOCATION_LIMIT, peak
