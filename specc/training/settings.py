"""Training settings: every one resolved from specc's defaults, the spec's `train { }` section and
the command line's flags, in that rising order."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

try:
    import fcntl
except ImportError:  # Windows: RunLock falls back to an exclusively created file
    fcntl = None  # type: ignore[assignment]


from specc.errors import Diagnostic, UsageError
from specc.ir import CallSpec, Train
from specc.suggest import did_you_mean
from specc.training.optimizers import OPTIMIZERS, SCHEDULES, canonical


@dataclass(frozen=True)
class Settings:
    """Every training setting, resolved: defaults < the spec's train section < command-line flags."""

    optimizer: str = "SGD"
    optimizer_args: Mapping[str, Any] = field(default_factory=dict)
    batch: int = 100
    epochs: int | None = None
    iters: int | None = None
    weight_decay: float = 0.0
    seed: int = 0
    dtype: str = "float32"
    schedule: str = "constant"
    schedule_args: Mapping[str, Any] = field(default_factory=dict)
    data: str | None = None
    train_size: int | None = None  # train on the first N training samples only
    validation: float | None = None  # this fraction of the (first train_size) training samples is held
    #                                  out and scored as the "test" set: the test set is never seen
    eval_sample: int | None = None  # evaluate on the first N train and test samples per epoch (the
    #                                 book's evaluate_sample_num_per_epoch); None: all of them
    split_seed: int | None = None  # shuffles the training samples before `validation` is held out;
    #                                None: `seed` (a sweep whose trials draw their own seeds fixes it)

    @property
    def carve_seed(self) -> int:
        """The seed of the validation split."""
        return self.seed if self.split_seed is None else self.split_seed

    @property
    def lr(self) -> float:
        return float(self.optimizer_args["lr"])

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["optimizer_args"], d["schedule_args"] = dict(self.optimizer_args), dict(self.schedule_args)
        return d

    def describe(self) -> str:
        args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.optimizer_args.items())
        return f"{self.optimizer}({args})"


def resolve(train: Train | None, flags: Mapping[str, Any]) -> Settings:
    """Settings for a run. `flags` holds the command-line values given (None for those not given)."""
    written = dict(train.settings) if train else {}
    flags = {k: v for k, v in flags.items() if v is not None}
    opt_call = written.get("optimizer")
    name = opt_call.type if isinstance(opt_call, CallSpec) else "SGD"
    args = dict(opt_call.args) if isinstance(opt_call, CallSpec) else {}
    if "optimizer" in flags:
        chosen = canonical(OPTIMIZERS, flags["optimizer"])
        if chosen is None:
            raise UsageError([Diagnostic(f"unknown optimizer '{flags['optimizer']}'", None, "unknown-optimizer",
                                         hint=did_you_mean(flags["optimizer"], OPTIMIZERS)
                                         or "optimizers: " + ", ".join(OPTIMIZERS))])
        if chosen != name:
            name, args = chosen, {}
    args = {**OPTIMIZERS[name].defaults(), **args}
    if "lr" in written:
        args["lr"] = written["lr"]
    if "lr" in flags:
        args["lr"] = flags["lr"]
    sched = written.get("schedule")
    sched_name = sched.type if isinstance(sched, CallSpec) else "constant"
    sched_args = {**SCHEDULES[sched_name].defaults(), **(dict(sched.args) if isinstance(sched, CallSpec) else {})}
    epochs, iters = written.get("epochs"), written.get("iters")
    if "epochs" in flags:
        epochs, iters = flags["epochs"], None
    if "iters" in flags:
        epochs, iters = None, flags["iters"]
    if epochs is None and iters is None:
        epochs = 10
    return Settings(name, args, int(flags.get("batch", written.get("batch", 100))),
                    epochs, iters, float(flags.get("weight_decay", written.get("weight_decay", 0.0))),
                    int(flags.get("seed", written.get("seed", 0))),
                    str(flags.get("dtype", written.get("dtype", "float32"))),
                    sched_name, sched_args, flags.get("data", written.get("data")),
                    train_size=flags.get("train_size"), validation=flags.get("validation"),
                    eval_sample=flags.get("eval_sample"), split_seed=flags.get("split_seed"))
