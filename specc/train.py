"""Training: settings resolved from defaults, the spec's `train { }` section and flags; a loop that
yields what happens (it never prints); a run folder with checkpoints, metrics and the spec as run.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

try:
    import fcntl
except ImportError:  # Windows: RunLock falls back to an exclusively created file
    fcntl = None  # type: ignore[assignment]

import numpy as np

from specc import checkpoint, plot
from specc.data import Batches, Dataset
from specc.errors import DataError, Diagnostic, RunError, UsageError
from specc.ir import Call, Train
from specc.layers.base import Labels, size
from specc.network import Network
from specc.optimizers import OPTIMIZERS, SCHEDULES, canonical, learning_rate, make_optimizer
from specc.suggest import did_you_mean
from specc.text import batch_shape, shape_text


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
    name = opt_call.type if isinstance(opt_call, Call) else "SGD"
    args = dict(opt_call.args) if isinstance(opt_call, Call) else {}
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
    sched_name = sched.type if isinstance(sched, Call) else "constant"
    sched_args = {**SCHEDULES[sched_name].defaults(), **(dict(sched.args) if isinstance(sched, Call) else {})}
    epochs, iters = written.get("epochs"), written.get("iters")
    if "epochs" in flags:
        epochs, iters = flags["epochs"], None
    if "iters" in flags:
        epochs, iters = None, flags["iters"]
    if epochs is None and iters is None:
        epochs = 10
    return Settings(name, args, int(flags.get("batch", written.get("batch", 100))),
                    epochs, iters, float(written.get("weight_decay", 0.0)),
                    int(flags.get("seed", written.get("seed", 0))),
                    str(flags.get("dtype", written.get("dtype", "float32"))),
                    sched_name, sched_args, flags.get("data", written.get("data")))


# --- what the loop reports ------------------------------------------------------------------

@dataclass(frozen=True)
class Started:
    total: int  # iterations in the whole run
    per_epoch: int
    start: int  # the first iteration of this session (> 0 when resumed)


@dataclass(frozen=True)
class Step:
    iteration: int  # completed iterations
    loss: float


@dataclass(frozen=True)
class Evaluated:
    record: dict[str, Any]  # one line of metrics.jsonl
    best: bool  # the best test accuracy so far (best.npz written)


@dataclass(frozen=True)
class Warned:
    diagnostic: Diagnostic  # something likely wrong with the run; it goes on (severity "warning")


# A step's loss this many times the loss at the start of the run (and at least EXPLODED_LOSS) means
# the weights are running away: far above any loss a converging run has, long before NaN stops it.
EXPLOSION_FACTOR = 1e3
EXPLODED_LOSS = 1e3


@dataclass(frozen=True)
class Stopped:
    iteration: int  # a checkpoint was written after this many iterations


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    predicted: np.ndarray  # class per sample
    labels: np.ndarray  # the true class per sample

    def confusion(self, classes: int) -> np.ndarray:
        """(classes, classes) counts: row = true class, column = predicted class."""
        matrix = np.zeros((classes, classes), np.int64)
        np.add.at(matrix, (self.labels, self.predicted), 1)
        return matrix


def evaluate(net: Network, batches: Batches, labels: np.ndarray, chunk: int | None = None) -> Evaluation:
    """Inference-mode loss and accuracy over a whole data set, in fixed-size chunks."""
    loss_layer = net.loss_layer.layer
    total = 0.0
    predicted = np.empty(len(labels), np.intp)
    for start, x in batches.chunks(chunk or net.eval_chunk):
        t = labels[start:start + len(x)]
        scores = net.forward(x, False)
        target = t if net.plan.labels is Labels.CLASSES else np.eye(scores.shape[1], dtype=scores.dtype)[t]
        total += loss_layer.loss(scores, target)[0] * len(x)
        predicted[start:start + len(x)] = scores.argmax(axis=1)
    return Evaluation(total / len(labels), float((predicted == labels).mean()), predicted, labels)


def check_fit(net: Network, data: Dataset) -> None:
    """Refuse, before training, data whose samples or classes do not fit the network."""
    want, got = net.input_shape, data.sample_shape
    if size(want) != size(got):
        raise DataError([Diagnostic(
            f"the data's samples are {shape_text(got)} ({size(got):,} values), but the network's input "
            f"is {batch_shape(want)} ({size(want):,} values)", net.checked.network.input_span
            or net.checked.layers[0].spec.span, "data-shape", "expects this input",
            f"{data.name} ({data.origin}) does not fit this network; change the input or the data")], net.source)
    outputs = net.loss_layer.out_shape[0]
    if net.plan.labels is Labels.CLASSES and data.classes > outputs:
        raise DataError([Diagnostic(
            f"the data's labels go up to {data.classes - 1}, but the network outputs {outputs} scores "
            f"(classes 0 to {outputs - 1})",
            net.loss_layer.spec.span, "data-classes", f"{outputs} classes",
            "the last Affine layer's size is the number of classes")], net.source)


class Trainer:
    """Trains a network on a data set, checkpointing into a run folder."""

    def __init__(self, net: Network, data: Dataset, settings: Settings, run_dir: Path, spec_text: str,
                 spec_file: str = "model.net"):
        check_fit(net, data)
        self.net, self.data, self.s, self.dir = net, data, settings, Path(run_dir)
        self.spec_text = spec_text
        self.spec_file = spec_file  # model.net, or model.json for an IR document
        # weight decay is the network's (its loss and gradients include it, as the book's do)
        net.weight_decay = settings.weight_decay
        self.optimizer = make_optimizer(settings.optimizer, settings.optimizer_args, net.parameters())
        self.train_x = Batches(data.x_train, data.scale(), net.dtype, net.input_shape)
        self.test_x = Batches(data.x_test, data.scale(), net.dtype, net.input_shape)
        n = len(data.x_train)
        self.per_epoch = max(1, math.ceil(n / settings.batch))
        if settings.iters is not None:
            self.total = settings.iters
        else:
            assert settings.epochs is not None  # resolve() sets epochs or iters
            self.total = settings.epochs * self.per_epoch
        self.order_rng = np.random.default_rng([settings.seed, 2])
        self.order = np.arange(n)
        self.iteration = 0
        self.elapsed = 0.0
        self.best = -1.0
        self.losses: list[float] = []  # training losses since the last evaluation
        self.records: list[dict[str, Any]] = []
        self.saved: int | None = None  # the iteration of the run folder's weights.npz, None before the first
        self.lock: RunLock | None = None
        self.curve: Path | None = None  # curve.png, once written
        self.first_loss: float | None = None  # this session's first step, the reference for explosions
        self.warned = False  # the loss explosion is reported once per session

    def close(self) -> None:
        """Release the run folder (idempotent)."""
        if self.lock is not None:
            self.lock.release()

    # --- the run folder ------------------------------------------------------------------
    def start_files(self) -> None:
        with _writing(self.dir):
            self._start_files()

    def _start_files(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / self.spec_file).write_text(self.spec_text, encoding="utf-8")
        self._write_config()
        (self.dir / "metrics.jsonl").write_text("", encoding="utf-8")

    def _write_config(self) -> None:
        config = {"settings": self.s.to_json(), "data": {"name": self.data.name, "origin": self.data.origin,
                                                         "train": len(self.data.x_train),
                                                         "test": len(self.data.x_test)},
                  "iterations": self.total, "iterations_per_epoch": self.per_epoch}
        tmp = self.dir / ".config.json.tmp"
        tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / "config.json")

    def resume(self) -> None:
        """Continue from the run folder's last checkpoint, exactly where it stopped."""
        arrays = checkpoint.restore(self.net, self.dir / "weights.npz", self.net.source)
        info = checkpoint.meta(arrays)
        if not {"iteration", "elapsed_s", "best", "rng", "order_rng"} <= set(info):
            raise DataError([Diagnostic("this checkpoint has no training progress to resume from", None,
                                        "bad-checkpoint", hint="resume from a run folder that specc train wrote")],
                            name=str(self.dir / "weights.npz"))
        self.iteration, self.elapsed, self.best = info["iteration"], info["elapsed_s"], info["best"]
        self.saved = self.iteration
        self.net.rng.bit_generator.state = info["rng"]
        self.order_rng.bit_generator.state = info["order_rng"]
        opt = checkpoint.optimizer_state(arrays)
        self.order = opt.pop("order", self.order)
        self.losses = [float(v) for v in opt.pop("losses", [])]
        self.optimizer.load_state(opt)
        kept = []
        path = self.dir / "metrics.jsonl"
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill
                if record.get("iteration", 0) <= self.iteration:
                    kept.append(record)
        self.records = kept
        tmp = path.with_suffix(".tmp")
        with _writing(path):
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
            os.replace(tmp, path)
        with _writing(self.dir / "config.json"):
            self._write_config()  # a run extended by --epochs or --iters is what a later --resume continues

    def save(self) -> None:
        self._check_finite()
        info = {"iteration": self.iteration, "elapsed_s": self.elapsed, "best": self.best,
                "rng": self.net.rng.bit_generator.state, "order_rng": self.order_rng.bit_generator.state,
                "settings": self.s.to_json()}
        state = {**self.optimizer.state(), "order": self.order, "losses": np.array(self.losses, np.float64)}
        checkpoint.save(self.dir / "weights.npz", self.net, state, info)
        self.saved = self.iteration

    def _blame(self, x: np.ndarray, t: np.ndarray) -> None:
        """A non-finite loss: RunError naming the layer that produced it, and the iteration."""
        step = self.iteration + 1
        try:
            self.net.gradient(x, t)  # finds the first layer whose output is not finite
        except RunError as e:
            first, *rest = e.diagnostics
            raise RunError([dataclasses.replace(first, message=f"{first.message} at iteration {step:,}"), *rest],
                           e.source, e.name) from None
        raise RunError([Diagnostic(f"the loss is not finite at iteration {step:,}", self.net.loss_layer.spec.span,
                                   "not-finite", "the loss", "lower the learning rate")], self.net.source)

    def _check_finite(self) -> None:
        """Refuse to overwrite a good checkpoint with weights an overflowing step made infinite."""
        for c in self.net.checked.layers:
            for name in (*c.params, *c.buffers):
                value = self.net.params[name] if name in self.net.params else self.net.state[name]
                if not np.isfinite(value).all():
                    raise RunError([Diagnostic(
                        f"{c.layer.describe()}'s {name} holds NaN or infinity after iteration {self.iteration:,}",
                        c.spec.span, "not-finite", f"layer {c.index + 1}",
                        "lower the learning rate; the checkpoint was not overwritten with these values")],
                        self.net.source)

    # --- the loop ------------------------------------------------------------------------------
    def run(self, stop: Callable[[], bool] = lambda: False) -> Iterator[Started | Step | Evaluated | Warned | Stopped]:
        net, s = self.net, self.s
        t_all = self.data.t_train
        yield Started(self.total, self.per_epoch, self.iteration)
        clock = time.perf_counter()
        while self.iteration < self.total:
            epoch, pos = divmod(self.iteration, self.per_epoch)
            if pos == 0:
                self.order = self.order_rng.permutation(len(t_all))
            index = self.order[pos * s.batch:(pos + 1) * s.batch]
            x = self.train_x.take(index)
            t = t_all[index] if net.plan.labels is Labels.CLASSES else net.labels(t_all[index], len(index))
            lr = learning_rate(s.lr, s.schedule, s.schedule_args, epoch, self.iteration / self.total)
            # Overflow is detected and reported with its layer (RunError), not warned about by numpy.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss = net.backward(x, t)
                if not math.isfinite(loss):
                    self._blame(x, t)
                self.optimizer.step(lr)
            self.iteration += 1
            self.losses.append(float(loss))
            yield Step(self.iteration, loss)
            exploding = self._explosion(float(loss), lr)
            if exploding is not None:
                yield Warned(exploding)
            if pos == self.per_epoch - 1 or self.iteration == self.total:
                self.elapsed += time.perf_counter() - clock
                yield self._evaluate(epoch, lr)
                clock = time.perf_counter()
            if self.iteration < self.total and stop():
                self.elapsed += time.perf_counter() - clock
                self.save()
                self.write_curve()
                yield Stopped(self.iteration)
                return
        self.write_curve()

    def _explosion(self, loss: float, lr: float) -> Diagnostic | None:
        """A warning, once, when a step's loss passes EXPLOSION_FACTOR times the first step's (and
        EXPLODED_LOSS): the learning rate is too high, though the loss may stay finite for long."""
        if self.first_loss is None:
            self.first_loss = loss
        if self.warned or loss <= max(EXPLOSION_FACTOR * self.first_loss, EXPLODED_LOSS):
            return None
        self.warned = True
        return Diagnostic(f"the training loss is exploding: {loss:.3g} at iteration {self.iteration:,}, "
                          f"from {self.first_loss:.3g} at the start", None, "loss-exploding",
                          hint=f"lower the learning rate (now {lr:g}), for example to {lr / 10:g}",
                          severity="warning")

    def write_curve(self) -> None:
        """curve.png of the run so far (self.curve is None without matplotlib)."""
        path = self.dir / "curve.png"
        with _writing(path):
            written = plot.learning_curve(self.records, path, f"{self.dir.name} on {self.data.name}")
        self.curve = path if written else None

    def _evaluate(self, epoch: int, lr: float) -> Evaluated:
        started = time.perf_counter()
        self._check_finite()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            train = evaluate(self.net, self.train_x, self.data.t_train)
            test = evaluate(self.net, self.test_x, self.data.t_test)
        eval_s = time.perf_counter() - started
        steps, losses = len(self.losses), self.losses
        self.losses = []
        record = {"epoch": epoch + 1, "iteration": self.iteration,
                  "loss": float(np.mean(losses)) if losses else float("nan"),
                  "train_loss": train.loss, "train_acc": train.accuracy,
                  "test_loss": test.loss, "test_acc": test.accuracy, "lr": lr,
                  "elapsed_s": round(self.elapsed, 3), "eval_s": round(eval_s, 3),
                  "samples_per_s": round(steps * self.s.batch / max(self.elapsed - self._last_elapsed(), 1e-9), 1)}
        best = test.accuracy > self.best
        if best:
            self.best = test.accuracy
            checkpoint.save(self.dir / "best.npz", self.net, None, {"iteration": self.iteration,
                                                                    "test_acc": test.accuracy})
        self.records.append(record)
        self.save()
        with _writing(self.dir / "metrics.jsonl"), open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return Evaluated(record, best)

    def _last_elapsed(self) -> float:
        return self.records[-1]["elapsed_s"] if self.records else 0.0


def deterministic(record: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics record without its timings: what must repeat bit for bit under the same seed."""
    return {k: v for k, v in record.items() if k not in ("elapsed_s", "eval_s", "samples_per_s")}


# --- run folders ---------------------------------------------------------------------------

@contextmanager
def _writing(path: Path):
    """OSError while writing run files (a full disk, a read-only folder) -> RunError, not a traceback."""
    try:
        yield
    except OSError as e:
        raise RunError([Diagnostic(f"cannot write {path}: {e.strerror or e}", None, "write-failed",
                                   hint="free some space or fix the folder's permissions; "
                                        "the last checkpoint, if any, is unchanged")]) from None


def new_run_folder(spec: Path, root: Path = Path("runs")) -> Path:
    """runs/<spec name>-<date>-<time>, numbered if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = root / f"{spec.stem}-{stamp}"
    folder, n = base, 1
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


class RunLock:
    """An exclusive kernel lock (flock) on a run folder's `.lock`, held open for the whole run.

    The kernel drops the lock when its process ends, however it ends (killed, crashed, a zombie not
    yet reaped), so a lock is never stale and a reused pid blocks nothing; taking it is atomic, so of
    two trainings started at once exactly one wins. The pid written inside is only for the message.
    Without fcntl (Windows, not a target) the file's existence is the lock: a stale one is deleted by hand.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._fd: int | None = None
        self._created = False  # this lock made the folder: an empty one is removed again on release

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        # A round is retried only when the owner releasing the lock removed the file (or the folder)
        # between our open and our lock: the file we locked is then not the folder's .lock any more.
        for _ in range(100):
            fd = self._open()
            if fd is None:
                continue
            if not _try_lock(fd):
                os.close(fd)
                raise self._in_use()
            if _is_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self._fd = fd
                return
            os.close(fd)
        raise UsageError([Diagnostic(f"could not take the lock of run folder {self.folder}", None, "folder-in-use")])

    def _open(self) -> int | None:
        """The lock file, opened (created if missing); None if it vanished under us."""
        try:
            self.folder.mkdir(parents=True)
            self._created = True
        except FileExistsError:
            pass
        except OSError as e:
            raise self._unusable(e) from None
        flags = os.O_RDWR | os.O_CREAT | (0 if fcntl else os.O_EXCL)
        try:
            return os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            return None
        except FileExistsError:  # no fcntl: the file is the lock
            raise self._in_use() from None
        except OSError as e:
            raise self._unusable(e) from None

    def _in_use(self) -> UsageError:
        owner = _pid_in(self.path)
        by = f" (process {owner})" if owner is not None else ""
        hint = "wait for it to finish, stop it (Ctrl-C), or train into another --out folder"
        if not fcntl:
            hint += f"; if no training is running, delete {self.path}"
        return UsageError([Diagnostic(f"run folder {self.folder} is in use by a training still running{by}",
                                      None, "folder-in-use", hint=hint)])

    def _unusable(self, e: OSError) -> UsageError:
        return UsageError([Diagnostic(f"cannot use run folder {self.folder}: {e.strerror or e}", None,
                                      "folder-unusable", hint="choose another --out folder, or fix its permissions")])

    def release(self) -> None:
        """Remove the lock file, then unlock (in that order: whoever locks the removed file sees it
        is not the folder's .lock and tries again); an empty folder this lock made goes too."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
        if self._created:
            try:
                self.folder.rmdir()  # only if empty: a run that never started leaves nothing behind
            except OSError:
                pass


def _try_lock(fd: int) -> bool:
    if not fcntl:
        return True  # created with O_EXCL: ours
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_file(fd: int, path: Path) -> bool:
    """Whether the open file `fd` is still the file at `path`."""
    try:
        here, opened = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (opened.st_dev, opened.st_ino)


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return True
