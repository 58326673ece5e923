"""Optimizers and schedules (specc.optimizers): each update rule against the book's formulas
(written out here as an independent oracle), weight decay, the schedules' rates, state for resuming,
and each optimizer lowering the training loss on the embedded sample."""
from __future__ import annotations

import math

import numpy as np
import pytest

from specc import api, data
from specc.network import Parameter
from specc.optimizers import OPTIMIZERS, SCHEDULES, learning_rate, make_optimizer
from specc.train import Settings, Trainer, evaluate

NAMES = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
TINY = "input 784\nAffine(10) -> SoftmaxWithLoss\n"


# --- the book's update rules, written out ----------------------------------------------------------

def book_steps(name: str, args: dict, w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """The book's optimizers (common/optimizer.py), one parameter, applied to a list of gradients."""
    w = w.copy()
    lr = args["lr"]
    v = np.zeros_like(w)
    h = np.zeros_like(w)
    m = np.zeros_like(w)
    for i, g in enumerate(grads, start=1):
        if name == "SGD":
            w -= lr * g
        elif name == "Momentum":
            v = args["momentum"] * v - lr * g
            w += v
        elif name == "Nesterov":
            mu = args["momentum"]
            v *= mu
            v -= lr * g
            w += mu * mu * v
            w -= (1 + mu) * lr * g
        elif name == "AdaGrad":
            h += g * g
            w -= lr * g / (np.sqrt(h) + 1e-7)
        elif name == "RMSprop":
            h *= args["decay_rate"]
            h += (1 - args["decay_rate"]) * g * g
            w -= lr * g / (np.sqrt(h) + 1e-7)
        elif name == "Adam":
            b1, b2 = args["beta1"], args["beta2"]
            lr_t = lr * np.sqrt(1.0 - b2 ** i) / (1.0 - b1 ** i)
            m += (1 - b1) * (g - m)
            v += (1 - b2) * (g ** 2 - v)
            w -= lr_t * m / (np.sqrt(v) + 1e-7)
    return w


def run_steps(name: str, args: dict, w: np.ndarray, grads: list[np.ndarray], weight_decay: float = 0.0,
              decay: bool = True) -> np.ndarray:
    p = Parameter("W1", w.copy(), np.zeros_like(w), decay)
    opt = make_optimizer(name, args, [p], weight_decay)
    for g in grads:
        p.grad[...] = g
        opt.step(opt.args["lr"])
    return p.value


@pytest.mark.parametrize("name", NAMES)
def test_update_rule_matches_the_book(name):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(5)]
    args = {**OPTIMIZERS[name].defaults(), "lr": 0.05}
    np.testing.assert_allclose(run_steps(name, args, w, grads), book_steps(name, args, w, grads), rtol=1e-12,
                               atol=1e-14)


def test_the_books_default_arguments():
    assert {n: OPTIMIZERS[n].defaults() for n in NAMES} == {
        "SGD": {"lr": 0.01},
        "Momentum": {"lr": 0.01, "momentum": 0.9},
        "Nesterov": {"lr": 0.01, "momentum": 0.9},
        "AdaGrad": {"lr": 0.01},
        "RMSprop": {"lr": 0.01, "decay_rate": 0.99},
        "Adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999},
    }


def test_arguments_override_defaults():
    p = Parameter("W1", np.zeros(2), np.zeros(2), True)
    opt = make_optimizer("Momentum", {"momentum": 0.5}, [p])
    assert opt.args == {"lr": 0.01, "momentum": 0.5}


@pytest.mark.parametrize("name", NAMES)
def test_weight_decay_adds_lambda_w_to_weights_only(name):
    """dL/dW of (lambda/2)*sum(W^2) is lambda*W; biases (decay=False) are not decayed."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 3))
    grads = [rng.standard_normal((3, 3)) for _ in range(3)]
    args = OPTIMIZERS[name].defaults()
    decayed = run_steps(name, args, w, grads, weight_decay=0.1)
    # the oracle: the same rule on g + 0.1 * w, step by step
    expect = w.copy()
    p = Parameter("W1", expect, np.zeros_like(w), False)
    opt = make_optimizer(name, args, [p])
    for g in grads:
        p.grad[...] = g + 0.1 * p.value
        opt.step(args["lr"])
    np.testing.assert_allclose(decayed, expect, rtol=1e-12)
    np.testing.assert_array_equal(run_steps(name, args, w, grads, weight_decay=0.1, decay=False),
                                  run_steps(name, args, w, grads))


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trip_continues_exactly(name):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5,)).astype(np.float32)
    grads = [rng.standard_normal(5).astype(np.float32) for _ in range(6)]
    args = OPTIMIZERS[name].defaults()
    straight = run_steps(name, args, w, grads)

    p = Parameter("W1", w.copy(), np.zeros_like(w), True)
    opt = make_optimizer(name, args, [p])
    for g in grads[:3]:
        p.grad[...] = g
        opt.step(args["lr"])
    state = {k: v.copy() for k, v in opt.state().items()}
    q = Parameter("W1", p.value.copy(), np.zeros_like(w), True)
    again = make_optimizer(name, args, [q])
    again.load_state(state)
    for g in grads[3:]:
        q.grad[...] = g
        again.step(args["lr"])
    np.testing.assert_array_equal(q.value, straight)


# --- schedules -------------------------------------------------------------------------------------

def test_schedule_defaults():
    assert SCHEDULES["step"].defaults() == {"every": 10, "gamma": 0.1}
    assert SCHEDULES["cosine"].defaults() == {"min_lr": 0.0}


def test_step_schedule():
    args = {"every": 2, "gamma": 0.5}
    assert [learning_rate(0.8, "step", args, epoch, 0.0) for epoch in range(6)] == [0.8, 0.8, 0.4, 0.4, 0.2, 0.2]
    assert learning_rate(1.0, "step", SCHEDULES["step"].defaults(), 10, 0.0) == pytest.approx(0.1)


def test_cosine_schedule():
    args = {"min_lr": 0.01}
    assert learning_rate(0.1, "cosine", args, 0, 0.0) == pytest.approx(0.1)
    assert learning_rate(0.1, "cosine", args, 3, 0.5) == pytest.approx(0.055)
    assert learning_rate(0.1, "cosine", args, 3, 0.25) == pytest.approx(0.01 + 0.09 * (1 + math.cos(math.pi / 4)) / 2)
    assert learning_rate(0.1, "cosine", args, 9, 1.0) == pytest.approx(0.01)
    assert learning_rate(0.1, "cosine", args, 9, 1.5) == pytest.approx(0.01)  # never below min_lr
    rates = [learning_rate(0.1, "cosine", {"min_lr": 0.0}, 0, k / 10) for k in range(11)]
    assert rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(0.0, abs=1e-12)


def test_constant_schedule():
    assert learning_rate(0.3, "constant", {}, 7, 0.9) == 0.3


def small_npz(tmp_path, n_train=40, n_test=10):
    rng = np.random.default_rng(0)
    path = tmp_path / "small.npz"
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 784), dtype=np.uint8), t_train=rng.integers(0, 10, n_train),
             x_test=rng.integers(0, 256, (n_test, 784), dtype=np.uint8), t_test=rng.integers(0, 10, n_test))
    return path


@pytest.mark.parametrize("schedule, rates", [
    ("step(every=1, gamma=0.5)", [0.1, 0.05, 0.025, 0.0125]),
    ("step(every=2, gamma=0.1)", [0.1, 0.1, 0.01, 0.01]),
])
def test_step_schedule_in_training(tmp_path, schedule, rates):
    spec = tmp_path / "m.net"
    spec.write_text(TINY + f"train {{\n  optimizer = SGD(lr=0.1)\n  schedule = {schedule}\n  batch = 10\n}}\n")
    trainer = api.training(spec, out=tmp_path / "run", data=str(small_npz(tmp_path)), epochs=4)
    try:
        records = [e.record for e in trainer.run() if hasattr(e, "record")]
    finally:
        trainer.close()
    assert [r["lr"] for r in records] == pytest.approx(rates)


def test_cosine_schedule_in_training(tmp_path):
    spec = tmp_path / "m.net"
    spec.write_text(TINY + "train {\n  optimizer = SGD(lr=0.1)\n  schedule = cosine(min_lr=0.001)\n  batch = 10\n}\n")
    trainer = api.training(spec, out=tmp_path / "run", data=str(small_npz(tmp_path)), epochs=4)
    try:
        records = [e.record for e in trainer.run() if hasattr(e, "record")]
    finally:
        trainer.close()
    # 4 iterations per epoch, 16 in all: the last step of epoch k runs at progress (4k - 1) / 16
    expect = [0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * (4 * k - 1) / 16)) for k in (1, 2, 3, 4)]
    assert [r["lr"] for r in records] == pytest.approx(expect)


# --- on real data --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample():
    return data.load(None)


def train_tiny(sample, tmp_path, settings: Settings, spec: str = TINY, seed: int = 0):
    net = api.compile(spec, seed=seed)
    trainer = Trainer(net, sample, settings, tmp_path, spec)
    trainer.start_files()
    before = evaluate(net, trainer.train_x, sample.t_train).loss
    records = [e.record for e in trainer.run() if hasattr(e, "record")]
    return net, before, records[-1]["train_loss"]


@pytest.mark.parametrize("name", NAMES)
def test_each_optimizer_lowers_the_training_loss(sample, tmp_path, name):
    settings = Settings(optimizer=name, optimizer_args=OPTIMIZERS[name].defaults(), batch=100, iters=30)
    _, before, after = train_tiny(sample, tmp_path, settings)
    assert before > 2.0  # an untrained 10-class network: about ln 10
    assert after < before - 0.1, (name, before, after)


def test_weight_decay_shrinks_the_weights(sample, tmp_path):
    base = dict(optimizer="SGD", optimizer_args={"lr": 0.1}, batch=100, iters=30)
    plain, _, _ = train_tiny(sample, tmp_path / "plain", Settings(**base))
    decayed, _, _ = train_tiny(sample, tmp_path / "decayed", Settings(**base, weight_decay=0.5))
    assert np.sum(decayed.params["W1"] ** 2) < 0.8 * np.sum(plain.params["W1"] ** 2)
