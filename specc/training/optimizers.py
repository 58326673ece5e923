"""Optimizers and learning-rate schedules: their names and arguments (what a `train { }` section
may write) next to their update rules. Variants share one implementation: SGD, Momentum and
Nesterov are one class; AdaGrad and RMSprop another.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from specc.errors import Diagnostic, UsageError
from specc.layers.args import POSITIVE_INT, Arg
from specc.training.flatparams import Whole, blocks, end_to_end

_EPS = 1e-7  # the book's small constant in adaptive denominators


class Optimizer(ABC):
    """Updates parameters in place from their gradients. `lr` is given per step (schedules)."""

    # The update is linear in the gradient (lr * g enters it, nothing else of g): gradients handed
    # over already scaled (step's grad_scale) give the same update for one multiplication less.
    linear = False

    def __init__(self, params: list, args: Mapping[str, Any]):
        self.params = params
        self.args = dict(args)
        self.slots: dict[str, dict[str, np.ndarray]] = {}  # slot -> parameter name -> array
        self.steps = 0
        values, grads = end_to_end([p.value for p in params]), end_to_end([p.grad for p in params])
        self._whole = Whole(values, grads) if values is not None and grads is not None else None
        self._flat_slots: dict[str, np.ndarray] = {}  # slot -> the flat array its views tile (whole only)
        if self._whole is not None:
            self._scratch = {"": np.empty_like(self._whole.value)}
            self._blocks = blocks(self._whole, self._scratch[""])
        else:
            self._scratch = {p.name: np.empty_like(p.value) for p in params}

    def slot(self, kind: str, fill: float = 0.0) -> dict[str, np.ndarray]:
        if kind not in self.slots:
            if self._whole is None:
                self.slots[kind] = {p.name: np.full_like(p.value, fill) for p in self.params}
            else:  # views of one flat array, laid out as the parameters are
                flat = self._flat_slots[kind] = np.full_like(self._whole.value, fill)
                self.slots[kind], at = {}, 0
                for p in self.params:
                    self.slots[kind][p.name] = flat[at:at + p.value.size].reshape(p.value.shape)
                    at += p.value.size
        return self.slots[kind]

    def held(self, kind: str, p) -> np.ndarray:
        """The `kind` slot of parameter p (of Whole: the flat array of every parameter's; of the
        shard: its part of that)."""
        arrays = self.slot(kind)
        if isinstance(p, Whole):
            return self._flat_slots[kind][p.lo:p.lo + len(p.value)]
        return arrays[p.name]

    def shard(self, lo: int, hi: int, grad: np.ndarray | None = None) -> bool:
        """Update only elements lo:hi of the flat parameters from now on (each MPI rank its part, the
        rest gathered from the others), with their gradient from `grad` (hi - lo values; by default
        elements lo:hi of the flat gradient); False, and every element as before, when the parameters
        are not one flat array. The rules are element-wise, so the parts give the whole's values."""
        if self._whole is None:
            return False
        part = Whole(self._whole.value[lo:hi], self._whole.grad[lo:hi] if grad is None else grad, lo)
        self._blocks = blocks(part, self._scratch[""][lo:hi])
        return True

    @property
    def flat_values(self) -> np.ndarray | None:
        """The flat array every parameter is a view of (None if they are not)."""
        return None if self._whole is None else self._whole.value

    @property
    def flat_slots(self) -> list[np.ndarray]:
        """The optimizer's state, one flat array per slot, in a fixed order (shard: only part of each is current)."""
        return [self._flat_slots[k] for k in sorted(self._flat_slots)]

    def gradient_scale(self, lr: float) -> float:
        """The factor the caller may fold into the gradients it hands to step(lr, grad_scale) (by
        Network.backward(x, t, grad_scale), the loss's gradient scaled): lr for an update linear in
        the gradient, whose step then multiplies by nothing (SGD: one subtraction); 1.0 otherwise."""
        return lr if self.linear and lr > 0 else 1.0

    def step(self, lr: float, grad_scale: float = 1.0) -> None:
        """One update from the gradients in the parameters' grad arrays, which hold grad_scale times
        the loss's gradient (1.0: the gradient itself; other values only where gradient_scale gave them)."""
        if grad_scale != 1.0 and not (self.linear and grad_scale > 0):
            raise UsageError([Diagnostic(
                f"grad_scale {grad_scale:g} given to an optimizer that takes only the gradient itself (1.0)",
                code="bad-grad-scale", hint="ask the optimizer's gradient_scale(lr) for the factor it takes")])
        self.steps += 1
        rate = lr / grad_scale  # of the gradients as held; exactly 1.0 when grad_scale is lr
        # (weight decay is in the gradient already: the network adds it, as the book's)
        if self._whole is not None:  # the flat arrays (or this rank's part of them), block by block
            for block, scratch in self._blocks:
                self.update(block, block.grad, rate, scratch)
            return
        for p in self.params:
            self.update(p, p.grad, rate, self._scratch[p.name])

    @abstractmethod
    def update(self, p, g: np.ndarray, lr: float, scratch: np.ndarray) -> None:
        """One parameter's update (or Whole's); `scratch` is a free array of its shape."""

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume exactly, as plain arrays for an .npz checkpoint."""
        out = {f"{kind}/{name}": a for kind, arrays in self.slots.items() for name, a in arrays.items()}
        out["steps"] = np.array(self.steps)
        return out

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.steps = int(arrays["steps"])
        for key, a in arrays.items():
            if "/" in key:
                kind, name = key.split("/", 1)
                self.slot(kind)[name][...] = a


class _Momentum(Optimizer):
    """SGD (momentum 0), Momentum, and Nesterov's accelerated gradient, as the book writes them."""

    nesterov = False
    linear = True

    def update(self, p, g, lr, scratch):
        mu = self.args.get("momentum", 0.0)
        if mu == 0.0:
            if lr == 1.0:  # the gradient came scaled by the rate (gradient_scale): it is the step
                p.value -= g
                return
            np.multiply(g, lr, out=scratch)
            p.value -= scratch
            return
        v = self.held("velocity", p)
        if self.nesterov:
            # The book's order: the step uses the velocity from before this gradient,
            # p += mu^2 * v_old - (1 + mu) * lr * g, and only then v = mu * v_old - lr * g.
            np.multiply(v, mu * mu, out=scratch)
            p.value += scratch
            np.multiply(g, (1 + mu) * lr, out=scratch)
            p.value -= scratch
        v *= mu
        if lr == 1.0:
            v -= g
        else:
            np.multiply(g, lr, out=scratch)
            v -= scratch
        if not self.nesterov:
            p.value += v


class _Nesterov(_Momentum):
    nesterov = True


class _Adaptive(Optimizer):
    """AdaGrad (a running sum of squared gradients) and RMSprop (a decaying average of them)."""

    def update(self, p, g, lr, scratch):
        h = self.held("h", p)
        decay = self.args.get("decay_rate")
        if decay is not None:
            h *= decay
            np.multiply(g, 1 - decay, out=scratch)  # (1 - decay) * g * g, in the book's order
            scratch *= g
            h += scratch
        else:
            np.multiply(g, g, out=scratch)
            h += scratch
        _scaled_step(p, g, h, lr, scratch)


def _scaled_step(p, numerator: np.ndarray, squares: np.ndarray, lr: float, scratch: np.ndarray) -> None:
    """p -= lr * numerator / (sqrt(squares) + eps), the step of the adaptive optimizers."""
    np.sqrt(squares, out=scratch)
    scratch += _EPS
    np.divide(numerator, scratch, out=scratch)
    scratch *= lr
    p.value -= scratch


class _Adam(Optimizer):
    """Adam with the book's bias-corrected step size."""

    def update(self, p, g, lr, scratch):
        b1, b2 = self.args["beta1"], self.args["beta2"]
        m, v = self.held("m", p), self.held("v", p)
        lr_t = lr * math.sqrt(1.0 - b2 ** self.steps) / (1.0 - b1 ** self.steps)
        np.subtract(g, m, out=scratch)
        scratch *= 1 - b1
        m += scratch
        np.multiply(g, g, out=scratch)
        scratch -= v
        scratch *= 1 - b2
        v += scratch
        _scaled_step(p, m, v, lr_t, scratch)

RATE = {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6}
FRACTION = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
LR_EXPECTS = "a positive number"


def _lr(default: float) -> Arg:
    return Arg("lr", RATE, LR_EXPECTS, default=default, doc="learning rate")


def _momentum() -> Arg:
    return Arg("momentum", FRACTION, "a number from 0 up to 1", default=0.9, doc="velocity decay")


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer's (or schedule's) name, arguments with the book's defaults, and implementation."""

    name: str
    signature: tuple[Arg, ...]
    doc: str
    impl: Any = field(default=None, compare=False)
    slots: int = 0  # arrays of state kept per parameter (velocity, squared gradients, moments)

    def defaults(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in self.signature:
            out[a.name] = a.default_for(out)
        return out


OPTIMIZERS: dict[str, OptimizerSpec] = {o.name: o for o in [
    OptimizerSpec("SGD", (_lr(0.01),), "plain stochastic gradient descent", _Momentum),
    OptimizerSpec("Momentum", (_lr(0.01), _momentum()), "SGD with momentum", _Momentum, 1),
    OptimizerSpec("Nesterov", (_lr(0.01), _momentum()), "Nesterov's accelerated gradient", _Nesterov, 1),
    OptimizerSpec("AdaGrad", (_lr(0.01),), "per-parameter rates from the sum of squared gradients", _Adaptive,
                  1),
    OptimizerSpec("RMSprop", (_lr(0.01), Arg("decay_rate", FRACTION, "a number from 0 up to 1",
                                             default=0.99, doc="decay of the squared-gradient average")),
                  "AdaGrad with a decaying average", _Adaptive, 1),
    OptimizerSpec("Adam", (_lr(0.001),
                           Arg("beta1", FRACTION, "a number from 0 up to 1", default=0.9),
                           Arg("beta2", FRACTION, "a number from 0 up to 1", default=0.999)),
                  "adaptive moments", _Adam, 2),
]}

SCHEDULES: dict[str, OptimizerSpec] = {o.name: o for o in [
    OptimizerSpec("constant", (), "the same learning rate throughout"),
    OptimizerSpec("step", (Arg("every", POSITIVE_INT, "a positive integer (epochs)", default=10),
                           Arg("gamma", {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                               "a number above 0 up to 1", default=0.1)),
                  "multiply the rate by gamma every `every` epochs"),
    OptimizerSpec("cosine", (Arg("min_lr", {"type": "number", "minimum": 0}, "a non-negative number",
                                 default=0.0),),
                  "cosine decay from the rate to min_lr over the run"),
]}


def make_optimizer(name: str, args: Mapping[str, Any], params: list) -> Optimizer:
    spec = OPTIMIZERS[name]
    return spec.impl(params, {**spec.defaults(), **args})


def learning_rate(base: float, schedule: str, args: Mapping[str, Any], epoch: int, progress: float) -> float:
    """The rate for a step: `epoch` counts from 0; `progress` is the fraction of the run done."""
    if schedule == "step":
        return base * args["gamma"] ** (epoch // args["every"])
    if schedule == "cosine":
        low = args["min_lr"]
        return low + (base - low) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return base


def canonical(table: dict[str, OptimizerSpec], name: str) -> str | None:
    """Names are matched without regard to case: adam, Adam and ADAM are the same optimizer."""
    for key in table:
        if key.lower() == name.lower():
            return key
    return None
