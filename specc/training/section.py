"""What a `train { }` section may write: each setting's key, JSON Schema, and meaning (the front
end validates a spec's section against these; specc.training.settings resolves them)."""
from __future__ import annotations

from dataclasses import dataclass

from specc.layers.args import POSITIVE_INT
from specc.training.optimizers import LR_EXPECTS, RATE


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
    Setting("lr", RATE, LR_EXPECTS, "learning rate (shorthand for the optimizer's lr)"),
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
