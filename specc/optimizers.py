"""Optimizers and learning-rate schedules that a `train { }` section may name, with their arguments."""
from __future__ import annotations

from dataclasses import dataclass

from specc.layers.base import POSITIVE_INT, Arg

_RATE = {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6}
_FRACTION = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
_LR_EXPECTS = "a positive number"


def _lr(default: float) -> Arg:
    return Arg("lr", _RATE, _LR_EXPECTS, default=default, doc="learning rate")


def _momentum() -> Arg:
    return Arg("momentum", _FRACTION, "a number from 0 up to 1", default=0.9, doc="velocity decay")


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer's name and arguments (the book's defaults); the update rule comes with training."""

    name: str
    signature: tuple[Arg, ...]
    doc: str


OPTIMIZERS: dict[str, OptimizerSpec] = {o.name: o for o in [
    OptimizerSpec("SGD", (_lr(0.01),), "plain stochastic gradient descent"),
    OptimizerSpec("Momentum", (_lr(0.01), _momentum()), "SGD with momentum"),
    OptimizerSpec("Nesterov", (_lr(0.01), _momentum()), "Nesterov's accelerated gradient"),
    OptimizerSpec("AdaGrad", (_lr(0.01),), "per-parameter rates from the sum of squared gradients"),
    OptimizerSpec("RMSprop", (_lr(0.01), Arg("decay_rate", _FRACTION, "a number from 0 up to 1",
                                             default=0.99, doc="decay of the squared-gradient average")),
                  "AdaGrad with a decaying average"),
    OptimizerSpec("Adam", (_lr(0.001),
                           Arg("beta1", _FRACTION, "a number from 0 up to 1", default=0.9),
                           Arg("beta2", _FRACTION, "a number from 0 up to 1", default=0.999)),
                  "adaptive moments"),
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


def canonical(table: dict[str, OptimizerSpec], name: str) -> str | None:
    """Names are matched without regard to case: adam, Adam and ADAM are the same optimizer."""
    for key in table:
        if key.lower() == name.lower():
            return key
    return None


@dataclass(frozen=True)
class Setting:
    """One key of the `train { }` section."""

    key: str
    schema: dict
    expects: str
    doc: str


SETTINGS: dict[str, Setting] = {s.key: s for s in [
    Setting("optimizer", {"$ref": "#/$defs/optimizer"}, "an optimizer such as Adam(lr=0.001)",
            "the update rule and its arguments"),
    Setting("lr", _RATE, _LR_EXPECTS, "learning rate (shorthand for the optimizer's lr)"),
    Setting("batch", POSITIVE_INT, "a positive integer", "samples per training step"),
    Setting("epochs", POSITIVE_INT, "a positive integer", "passes over the training set"),
    Setting("iters", POSITIVE_INT, "a positive integer", "training steps (instead of epochs)"),
    Setting("weight_decay", {"type": "number", "minimum": 0, "maximum": 1e6}, "a non-negative number",
            "L2 penalty: lambda/2 * sum(W^2) over the weights"),
    Setting("seed", {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
            "a non-negative integer", "seed for initialisation, shuffling and dropout"),
    Setting("dtype", {"enum": ["float32", "float64"]}, "'float32' or 'float64'", "floating-point type"),
    Setting("schedule", {"$ref": "#/$defs/schedule"}, "a schedule such as cosine or step(every=5)",
            "learning-rate schedule"),
    Setting("data", {"type": "string", "minLength": 1}, "a data set name or path",
            "the data set to train on (mnist, fashion-mnist, or a path)"),
]}
