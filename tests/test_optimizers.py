"""Optimizers and schedules (specc.optimizers): each update rule against two independent oracles
(three steps worked out by hand, and figures frozen from the book's own common/optimizer.py), weight
decay as the book's MultiLayerNet applies it, updates that allocate nothing, the schedules' rates,
state for resuming, and each optimizer lowering the training loss on the embedded sample."""
from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import specc
from specc import api
from specc.network import Parameter
from specc.training import data
from specc.training.evaluate import evaluate
from specc.training.loop import Trainer
from specc.training.optimizers import OPTIMIZERS, SCHEDULES, learning_rate, make_optimizer
from specc.training.settings import Settings

NAMES = ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"]
TINY = "input 784\nAffine(10) -> SoftmaxWithLoss\n"


# --- oracle 1: three steps worked out by hand --------------------------------------------------------
# Each row: optimizer, arguments, starting value, three gradients, the value after each step. The
# arithmetic is in the comments; eps is the book's 1e-7, added outside the square root.
HAND = [
    # p -= lr * g:  1 - 0.1*1 = 0.9;  0.9 - 0.1*2 = 0.7;  0.7 - 0.1*3 = 0.4
    ("SGD", {"lr": 0.1}, 1.0, [1.0, 2.0, 3.0], [0.9, 0.7, 0.4]),
    # v = mu*v - lr*g, then p += v:  v = -0.1, p = -0.1;  v = -0.09 - 0.1 = -0.19, p = -0.29;
    # v = -0.171 - 0.1 = -0.271, p = -0.561
    ("Momentum", {"lr": 0.1, "momentum": 0.9}, 0.0, [1.0, 1.0, 1.0], [-0.1, -0.29, -0.561]),
    # the book: p += mu*mu*v - (1+mu)*lr*g with the velocity from before, then v = mu*v - lr*g.
    # v0 = 0. step 1: p += 0.81*0 - 1.9*0.1 = -0.19,          v = -0.1
    #         step 2: p += 0.81*(-0.1) - 0.19 = -0.271 -> -0.461,  v = -0.09 - 0.1 = -0.19
    #         step 3: p += 0.81*(-0.19) - 0.19 = -0.3439 -> -0.8049, v = -0.271
    ("Nesterov", {"lr": 0.1, "momentum": 0.9}, 0.0, [1.0, 1.0, 1.0], [-0.19, -0.461, -0.8049]),
    # h += g*g, p -= lr*g / (sqrt(h) + eps). With g = eps the constant is as large as the root:
    # h = k*1e-14, sqrt(h) = sqrt(k)*1e-7, so the step is lr / (sqrt(k) + 1):
    # 0.1/2 = 0.05;  0.1/2.41421356 = 0.04142136 -> -0.09142136;  0.1/2.73205081 = 0.03660254 -> -0.12802390
    # (eps inside the root, sqrt(h + eps), would give steps near 0.1 * 1e-7 / 3.2e-4, about 3e-5)
    ("AdaGrad", {"lr": 0.1}, 0.0, [1e-7, 1e-7, 1e-7], [-0.05, -0.09142135623730951, -0.1280238966157534]),
    # h = rho*h + (1-rho)*g*g with rho = 0.75: h = 0.25*16 = 4;  0.75*4 + 0.25*4 = 4;  again 4.
    # p -= lr*g / (sqrt(h) + eps): 0.4/(2 + 1e-7) = 0.19999999 -> -0.19999999;
    # 0.2/(2 + 1e-7) = 0.099999995 -> -0.299999985;  g = -2 steps back up -> -0.19999999
    ("RMSprop", {"lr": 0.1, "decay_rate": 0.75}, 0.0, [4.0, 2.0, -2.0], [-0.19999999, -0.299999985, -0.19999999]),
    # m += (1-b1)*(g-m), v += (1-b2)*(g*g-v), lr_t = lr*sqrt(1-b2^t)/(1-b1^t) with t = 1, 2, 3 (the
    # book's iter), p -= lr_t*m / (sqrt(v) + eps); b1 = 0.9, b2 = 0.999, g = 1, -1, 1:
    # t=1: m = 0.1,   v = 0.001,     sqrt(v) = 0.0316227766, lr_t = 0.1*0.0316227766/0.1
    #      step = 0.0316227766*0.1/(0.0316227766 + 1e-7) = 0.0999996838 -> p = -0.0999996838
    # t=2: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999, sqrt(v) = 0.0447101778,
    #      lr_t = 0.1*0.0447101778/0.19, step = lr_t*(-0.01)/(0.0447101778 + 1e-7) = -0.0052631461
    #      -> p = -0.0947365377
    # t=3: m = -0.009 + 0.1 = 0.091, v = 0.001997001 + 0.001 = 0.002997001, sqrt(v) = 0.0547448719,
    #      lr_t = 0.1*0.0547448719/0.271, step = lr_t*0.091/(0.0547448719 + 1e-7) = 0.0335792745
    #      -> p = -0.1283158121
    ("Adam", {"lr": 0.1, "beta1": 0.9, "beta2": 0.999}, 0.0, [1.0, -1.0, 1.0],
     [-0.0999996838, -0.0947365377, -0.1283158121]),
]


def test_hand_table_covers_every_optimizer():
    assert sorted(row[0] for row in HAND) == sorted(OPTIMIZERS)


def trajectory(name: str, args: dict, params: list[Parameter], grads: list[list[np.ndarray]],
               weight_decay: float = 0.0) -> list[list[np.ndarray]]:
    """specc's optimizer run over `grads` (one list per step, a gradient per parameter): values after each step.

    With `weight_decay`, each weight's gradient is dW + lambda * W, as the book's MultiLayerNet.gradient
    (and specc's Network.backward) hands it to the optimizer; biases (decay False) are left alone."""
    opt = make_optimizer(name, args, params)
    out = []
    for step in grads:
        for p, g in zip(params, step):
            p.grad[...] = g + weight_decay * p.value if p.decay else g
        opt.step(opt.args["lr"])
        out.append([p.value.copy() for p in params])
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, args, start, grads, expect", HAND, ids=[row[0] for row in HAND])
def test_three_steps_worked_by_hand(name, args, start, grads, expect, dtype):
    p = Parameter("W1", np.full(2, start, dtype), np.zeros(2, dtype), True)
    got = [values[0] for values in trajectory(name, args, [p], [[np.full(2, g, dtype)] for g in grads])]
    tol = 1e-9 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(np.array(got), np.repeat(np.array(expect)[:, None], 2, axis=1), rtol=tol, atol=tol)


def test_nesterov_is_the_books_update_not_momentum_on_the_new_velocity():
    """Issue 9: with p = 0, g = 1, lr = 0.1, mu = 0.9 specc gave -0.2710, -0.6149, -1.0244 (it added
    mu^2 times the velocity already updated); the book gives -0.19, -0.461, -0.8049."""
    p = Parameter("W1", np.zeros(1), np.zeros(1), True)
    got = [float(v[0][0]) for v in trajectory("Nesterov", {"lr": 0.1, "momentum": 0.9}, [p], [[np.ones(1)]] * 3)]
    assert got == pytest.approx([-0.19, -0.461, -0.8049], abs=1e-12)


# --- oracle 2: the book's own code, run once and frozen here -----------------------------------------

def lcg(n: int, seed: int) -> np.ndarray:
    """Pseudo-random numbers in [-2, 2) from a linear congruential generator: every value is exact in
    float64 and the same on any machine or NumPy version (unlike a Generator's stream)."""
    out, s = [], seed
    for _ in range(n):
        s = (1103515245 * s + 12345) % 2**31
        out.append(s / 2**31 * 4 - 2)
    return np.array(out)


def book_inputs() -> tuple[np.ndarray, np.ndarray, list[list[np.ndarray]]]:
    """W1 (2, 3) and b1 (3,) to start from, and 20 steps of gradients for them: lcg(189, 2024) in order."""
    v = lcg(9 * 21, 2024)
    grads = [[v[9 * k:9 * k + 6].reshape(2, 3), v[9 * k + 6:9 * k + 9]] for k in range(1, 21)]
    return v[:6].reshape(2, 3), v[6:9], grads


# Produced by the book's common/optimizer.py (oreilly-japan/deep-learning-from-scratch at commit 07b1161)
# with its default arguments: opt = SGD() (Momentum(), ...); opt.update(params, grads) 20 times on
# params = {"W1": W1, "b1": b1} and grads from book_inputs(). For the _DECAY table the weight gradient
# was dW + 0.1 * W, as the book's MultiLayerNet.gradient writes it for weight_decay_lambda=0.1; biases as
# they are.
BOOK_20_STEPS = {  # name -> (W1 after 20 steps, row by row; b1 after 20 steps)
    "SGD": ([[-1.7641508019343015, -0.7734591879323125, -1.6686084637418388],
             [-0.23513061035424476, -1.9720454913750292, 0.31415778558701285]],
            [0.8107282587513325, -0.03558123994618654, -2.03660143379122]),
    "Momentum": ([[-1.9417508397475909, -1.1976658889826268, -1.412497651320758],
                  [-0.407269459927086, -1.8867117766250865, 0.5338371977734426]],
                 [0.3600348127521636, -0.10412490543210329, -2.384653067440438]),
    "Nesterov": ([[-1.9327980887719427, -1.2168863007807251, -1.3965102367777198],
                  [-0.4260818082144891, -1.8926875586399157, 0.5636077522585863]],
                 [0.3395955484483449, -0.1092899545787319, -2.3935198427146496]),
    "AdaGrad": ([[-1.7567935266410413, -0.7351415531442933, -1.6794741649602953],
                 [-0.22252125445120335, -1.9837489316536825, 0.25543608060437706]],
                [0.8619963506873798, -0.025149353520946674, -2.0059548699813377]),
    "RMSprop": ([[-1.7786375365108693, -1.0097412805742163, -1.3590762038560644],
                 [-0.4710086150630273, -2.064342698594249, 0.24924038068521073]],
                [0.6641055069666743, -0.051767124960313646, -2.1683705632201673]),
    "Adam": ([[-1.7553357044684363, -0.7139686874555733, -1.7078838427494731],
              [-0.20146103600573215, -1.975472879779322, 0.25662994030771835]],
             [0.87800662000994, -0.023738616906220446, -1.9937745489968666]),
}
BOOK_20_STEPS_DECAY = {  # name -> (W1 after 20 steps, row by row; b1 after 20 steps)
    "SGD": ([[-1.729075573669557, -0.7585868817888992, -1.6352034927015968],
             [-0.2307901151714881, -1.9331483320911018, 0.3088421139022395]],
            [0.8107282587513325, -0.03558123994618654, -2.03660143379122]),
    "Momentum": ([[-1.7310060795784352, -1.092736330520177, -1.2259298456469394],
                  [-0.3686320579297383, -1.6614924267770301, 0.5074791395758594]],
                 [0.3600348127521636, -0.10412490543210329, -2.384653067440438]),
    "Nesterov": ([[-1.7081181648821961, -1.1019505052516463, -1.201490258122659],
                  [-0.38331781793901143, -1.6554788144015293, 0.534256658423819]],
                 [0.3395955484483449, -0.1092899545787319, -2.3935198427146496]),
    "AdaGrad": ([[-1.7476541423926628, -0.7318326404245367, -1.6726405987284472],
                 [-0.22137485734067167, -1.9549890255219018, 0.25433764779766405]],
                [0.8619963506873798, -0.025149353520946674, -2.0059548699813377]),
    "RMSprop": ([[-1.687805214645351, -0.9654900626999839, -1.3024568454481038],
                 [-0.4468836110674665, -1.7810594509387854, 0.2434010589116943]],
                [0.6641055069666743, -0.051767124960313646, -2.1683705632201673]),
    "Adam": ([[-1.752769522476439, -0.7130232743506957, -1.7054148433063945],
              [-0.20113337852315033, -1.9707904345009024, 0.25628943081489136]],
             [0.87800662000994, -0.023738616906220446, -1.9937745489968666]),
}


@pytest.mark.parametrize("decay, table", [(0.0, BOOK_20_STEPS), (0.1, BOOK_20_STEPS_DECAY)], ids=["plain", "decay"])
@pytest.mark.parametrize("name", NAMES)
def test_twenty_steps_match_the_books_code(name, decay, table):
    """Two parameters, so Adam's step count must advance once per step (the book's iter), not per array."""
    w, b, grads = book_inputs()
    params = [Parameter("W1", w.copy(), np.zeros_like(w), True), Parameter("b1", b.copy(), np.zeros_like(b), False)]
    final = trajectory(name, OPTIMIZERS[name].defaults(), params, grads, weight_decay=decay)[-1]
    for got, expect in zip(final, table[name]):
        np.testing.assert_allclose(got, expect, rtol=1e-13, atol=1e-14)


def test_weight_decay_worked_by_hand():
    """SGD with lr = 0.1, lambda = 0.1 and a zero gradient: W *= 1 - 0.1*0.1 each step
    (0.99, 0.9801, 0.970299); the bias (decay=False) does not move."""
    w = Parameter("W1", np.ones(2), np.zeros(2), True)
    b = Parameter("b1", np.ones(2), np.zeros(2), False)
    steps = trajectory("SGD", {"lr": 0.1}, [w, b], [[np.zeros(2), np.zeros(2)]] * 3, weight_decay=0.1)
    assert [float(values[0][0]) for values in steps] == pytest.approx([0.99, 0.9801, 0.970299], abs=1e-15)
    assert all(np.array_equal(values[1], np.ones(2)) for values in steps)


@pytest.mark.parametrize("name", NAMES)
def test_a_step_allocates_no_arrays(name):
    """Updates are in place, through the optimizer's scratch array: after the first step (which makes the
    state), a step on 8 MB of weights allocates nothing of that order."""
    n = 1_000_000
    p = Parameter("W1", np.ones(n), np.full(n, 0.5), True)
    opt = make_optimizer(name, {}, [p])
    opt.step(0.01)
    tracemalloc.start()
    try:
        for _ in range(3):
            opt.step(0.01)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000, (name, peak)


# --- arguments and state ---------------------------------------------------------------------------

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
def test_state_round_trip_continues_exactly(name):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5,)).astype(np.float32)
    grads = [rng.standard_normal(5).astype(np.float32) for _ in range(6)]
    args = OPTIMIZERS[name].defaults()
    straight = trajectory(name, args, [Parameter("W1", w.copy(), np.zeros_like(w), True)], [[g] for g in grads])[-1][0]

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


# --- one flat update: the network's parameters and gradients tile one array each ------------------
@pytest.mark.parametrize("name", NAMES)
def test_an_update_over_the_flat_buffers_equals_one_per_parameter(name):
    net = specc.load("models/multi_layer_net.net")
    flat = net.parameters()
    apart = [Parameter(p.name, p.value.copy(), p.grad.copy(), p.decay) for p in flat]
    one, each = make_optimizer(name, {}, flat), make_optimizer(name, {}, apart)
    assert one._whole is not None and each._whole is None  # the network lays them out end to end
    assert len(one._blocks) == 2  # 100,310 float32 values: two cache-sized blocks, updated one by one
    rng = np.random.default_rng(0)
    for _ in range(3):
        for p, q in zip(flat, apart):
            p.grad[...] = rng.standard_normal(p.grad.shape)
            q.grad[...] = p.grad
        one.step(0.01)
        each.step(0.01)
    for p, q in zip(flat, apart):
        np.testing.assert_array_equal(p.value, q.value)
    assert one.state().keys() == each.state().keys()  # checkpoints keep one entry per parameter
    for key, a in each.state().items():
        np.testing.assert_array_equal(one.state()[key], a)


@pytest.mark.parametrize("name", ["SGD", "Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam"])
def test_sharded_updates_of_the_parts_make_the_whole_update(name):
    """Under MPI each rank updates its part of the flat parameters (Optimizer.shard), then the parts are
    gathered: three parts, each updated by its own optimizer, copied together after every step, give
    one optimizer's values and (gathered) state exactly."""
    whole = specc.load("models/multi_layer_net.net", dtype="float64")
    one = make_optimizer(name, {}, whole.parameters())
    nets = [specc.load("models/multi_layer_net.net", dtype="float64") for _ in range(3)]
    opts = [make_optimizer(name, {}, n.parameters()) for n in nets]
    n = opts[0].flat_values.size
    cuts = [(0, n // 3), (n // 3, 2 * n // 3), (2 * n // 3, n)]
    assert all(o.shard(lo, hi) for o, (lo, hi) in zip(opts, cuts))
    rng = np.random.default_rng(1)
    for _ in range(3):
        g = rng.standard_normal(n)
        one._whole.grad[...] = g
        one.step(0.01)
        for o in opts:
            o._whole.grad[...] = g
            o.step(0.01)
        for o in opts:  # the Allgatherv
            for (lo, hi), src in zip(cuts, opts):
                o.flat_values[lo:hi] = src.flat_values[lo:hi]
    for o in opts:
        np.testing.assert_array_equal(o.flat_values, one.flat_values)
    for k, flat in enumerate(one.flat_slots):
        gathered = np.concatenate([opts[i].flat_slots[k][lo:hi] for i, (lo, hi) in enumerate(cuts)])
        np.testing.assert_array_equal(gathered, flat)


# --- gradients handed over scaled: the trainer folds SGD's rate into the loss's gradient -------------
@pytest.mark.parametrize("name", NAMES)
def test_scaled_gradients_give_the_same_update(name):
    """gradient_scale(lr) is lr for the updates linear in the gradient (SGD, Momentum, Nesterov) and 1
    for the others; gradients times that factor, with step(lr, factor), give the plain update (to
    rounding: lr * g is rounded once either way) and the same state. The hand table's numbers too."""
    lr = 0.05
    plain, scaled = (specc.load("models/multi_layer_net.net", dtype="float64") for _ in range(2))
    one, other = make_optimizer(name, {}, plain.parameters()), make_optimizer(name, {}, scaled.parameters())
    factor = other.gradient_scale(lr)
    assert factor == (lr if name in ("SGD", "Momentum", "Nesterov") else 1.0)
    rng = np.random.default_rng(2)
    for _ in range(3):
        g = rng.standard_normal(one._whole.grad.size)
        one._whole.grad[...] = g
        other._whole.grad[...] = g * factor
        one.step(lr)
        other.step(lr, factor)
    np.testing.assert_allclose(other.flat_values, one.flat_values, rtol=1e-14, atol=1e-15)
    for a, b in zip(other.flat_slots, one.flat_slots):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name, args, start, grads, expect", [row for row in HAND if row[0] in
                                                               ("SGD", "Momentum", "Nesterov")],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_scaled_gradients_worked_by_hand(name, args, start, grads, expect):
    p = Parameter("w", np.array([start]), np.zeros(1), False)
    opt = make_optimizer(name, args, [p])
    factor = opt.gradient_scale(args["lr"])
    for g, want in zip(grads, expect):
        p.grad[...] = g * factor
        opt.step(args["lr"], factor)
        assert p.value[0] == pytest.approx(want, rel=1e-12)


def test_a_nonlinear_update_refuses_scaled_gradients_and_a_zero_rate_is_not_folded():
    net = specc.compile(TINY)
    adam, sgd = make_optimizer("Adam", {}, net.parameters()), make_optimizer("SGD", {}, net.parameters())
    with pytest.raises(specc.UsageError, match="grad_scale"):
        adam.step(0.001, 0.001)
    assert adam.steps == 0  # refused before anything moved
    assert sgd.gradient_scale(0.0) == 1.0  # (a rate of 0 folded in would leave 0 / 0 for the update)
    with pytest.raises(specc.UsageError, match="grad_scale"):
        sgd.step(0.1, 0.0)


def test_a_scaled_sgd_step_allocates_nothing_and_subtracts_the_gradient():
    net = specc.compile(TINY)
    opt = make_optimizer("SGD", {}, net.parameters())
    opt._whole.grad[...] = 0.25
    before = opt.flat_values.copy()
    opt.step(0.1, 0.1)
    tracemalloc.start()
    opt.step(0.1, 0.1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1000
    np.testing.assert_array_equal(opt.flat_values, before - 0.25 - 0.25)  # the gradient is the step
