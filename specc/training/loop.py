"""The training loop: a Trainer steps through the data, evaluates, checkpoints into its run folder,
and yields what happens (it never prints); resuming continues exactly where a run stopped."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from specc.errors import DataError, Diagnostic
from specc.layers.base import Labels
from specc.network import Network
from specc.training import checkpoint, plot
from specc.training.data import Batches, Dataset
from specc.training.divergence import blame_loss, check_finite, explosion
from specc.training.evaluate import check_fit, score
from specc.training.events import Evaluated, Started, Step, Stopped, Warned
from specc.training.optimizers import learning_rate, make_optimizer
from specc.training.ranks import Ranks
from specc.training.runfolder import RunLock, writing
from specc.training.settings import Settings
from specc.training.world import ALONE, Shares, World, refuse_empty_shares


class Trainer:
    """Trains a network on a data set, checkpointing into a run folder."""

    def __init__(self, net: Network, data: Dataset, settings: Settings, run_dir: Path, spec_text: str,
                 spec_file: str = "model.net", world: World = ALONE):
        check_fit(net, data)
        n = len(data.x_train)
        refuse_empty_shares(net, world, min(settings.batch, n, n % settings.batch or settings.batch))
        self.net, self.data, self.s, self.dir = net, data, settings, Path(run_dir)
        # Under MPI every rank holds the whole model and its optimizer and evaluates its share of the
        # evaluation sets; rank 0 alone writes.
        self.world = world
        # BatchNorm's statistics and Dropout's masks reach the other ranks' shares of each batch
        self.shares = Shares(world) if world.size > 1 else None
        if self.shares is not None:
            net.batch = self.shares
        self.spec_text = spec_text
        self.spec_file = spec_file  # model.net, or model.json for an IR document
        # weight decay is the network's (its loss and gradients include it, as the book's do)
        net.weight_decay = settings.weight_decay
        # the ranks' sums of each step's gradients, and their parts of the update (training.ranks)
        self.ranks = Ranks(net, world)
        self.optimizer = make_optimizer(settings.optimizer, settings.optimizer_args, net.parameters())
        self.ranks.shard(self.optimizer)
        self.train_x = Batches(data.x_train, data.scale(), net.dtype, net.input_shape)
        self.test_x = Batches(data.x_test, data.scale(), net.dtype, net.input_shape)
        # what each epoch's evaluation scores: everything, or the first eval_sample of each split
        n_eval = settings.eval_sample
        self.train_eval = self.train_x if n_eval is None else \
            Batches(data.x_train[:n_eval], data.scale(), net.dtype, net.input_shape)
        self.test_eval = self.test_x if n_eval is None else \
            Batches(data.x_test[:n_eval], data.scale(), net.dtype, net.input_shape)
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
        self.stopped = False  # the run ended at a stop request (every rank stops after the same step)
        self.companions: Any = None  # the thread ranks beside this one (training.asranks, --as-ranks N)

    def close(self) -> None:
        """Release the run folder, end the thread ranks beside this one, and give the network its
        parameters back in memory of its own (idempotent)."""
        self.ranks.release()
        if self.lock is not None:
            self.lock.release()
        if self.companions is not None:
            self.companions.close()

    # --- the run folder ------------------------------------------------------------------
    def start_files(self) -> None:
        with writing(self.dir):
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
        self.ranks.loaded()
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
        if not self.world.root:
            return  # rank 0 rewrites the run folder
        checkpoint.remove_partial(self.dir)
        tmp = path.with_suffix(".tmp")
        with writing(path):
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
            os.replace(tmp, path)
        with writing(self.dir / "config.json"):
            self._write_config()  # a run extended by --epochs or --iters is what a later --resume continues

    def save(self) -> None:
        check_finite(self.net, self.iteration)
        info = {"iteration": self.iteration, "elapsed_s": self.elapsed, "best": self.best,
                "rng": self.net.rng.bit_generator.state, "order_rng": self.order_rng.bit_generator.state,
                "settings": self.s.to_json()}
        state = {**self.optimizer.state(), "order": self.order, "losses": np.array(self.losses, np.float64)}
        checkpoint.save(self.dir / "weights.npz", self.net, state, info)
        self.saved = self.iteration

    # --- the loop ------------------------------------------------------------------------------
    def run(self, stop: Callable[[], bool] = lambda: False) -> Iterator[Started | Step | Evaluated | Warned | Stopped]:
        s = self.s
        t_all = self.data.t_train
        yield Started(self.total, self.per_epoch, self.iteration)
        clock = time.perf_counter()
        while self.iteration < self.total:
            epoch, pos = divmod(self.iteration, self.per_epoch)
            if pos == 0:
                self.order = self.order_rng.permutation(len(t_all))
            index = self.order[pos * s.batch:(pos + 1) * s.batch]
            lr = learning_rate(s.lr, s.schedule, s.schedule_args, epoch, self.iteration / self.total)
            # Overflow is detected and reported with its layer (RunError), not warned about by numpy.
            scale = self.optimizer.gradient_scale(lr)  # SGD: lr folded into the gradients, the update one subtraction
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                loss, stopping = self._gradients(index, stop, scale)
                self.optimizer.step(lr, scale)
            self.ranks.updated()
            self.iteration += 1
            self.losses.append(float(loss))
            yield Step(self.iteration, loss)
            exploding = self._explosion(float(loss), lr)
            if exploding is not None:
                yield Warned(exploding)
            if pos == self.per_epoch - 1 or self.iteration == self.total:
                self.elapsed += time.perf_counter() - clock
                yield self._evaluate(epoch, lr)  # every rank scores its share
                clock = time.perf_counter()
            if self.iteration < self.total and stopping():
                self.elapsed += time.perf_counter() - clock
                self.ranks.gather_state(self.optimizer)
                if self.world.root:
                    self.save()
                self.stopped = True
                # said before the curve is drawn (a second or so): a launcher that ends the ranks soon
                # after passing them a SIGTERM (Open MPI's mpirun at Ctrl-C) leaves the message
                yield Stopped(self.iteration)
                if self.world.root:
                    self.write_curve()
                return
        if self.world.root:
            self.write_curve()

    def _gradients(self, index: np.ndarray, stop: Callable[[], bool],
                   grad_scale: float = 1.0) -> tuple[float, Callable[[], bool]]:
        """The loss of the global batch `index`, its gradients (times grad_scale) in net.grads, and
        whether to stop after this step. Under MPI each rank computes its share's part of the global
        batch's mean loss's gradient (its own mean loss's, scaled by its share of the samples), and
        the ranks sum them, with the stop flag, so all ranks agree (training.ranks)."""
        local = self.world.share(index)
        weight = len(local) / len(index)
        if len(local) == 0:  # fewer samples than ranks: this rank adds nothing
            assert self.ranks.flat is not None
            self.ranks.flat[:] = 0
            loss = 0.0
        else:
            if self.shares is not None:
                self.shares.split(len(index))
            x, t = self._sample(local)
            loss = self.net.backward(x, t, grad_scale * weight)
            if self.world.size == 1 and not math.isfinite(loss):
                blame_loss(self.net, x, t, self.iteration + 1)
        if self.world.size == 1:
            return loss, stop
        loss, stopping = self.ranks.sum(loss * weight, stop())
        if not math.isfinite(loss):  # every rank sees it (after the sum), so every rank stops here
            blame_loss(self.net, *self._sample(index), self.iteration + 1)
        return loss, lambda: stopping

    def _sample(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self.data.t_train[index]
        return self.train_x.take(index), t if self.net.plan.labels is Labels.CLASSES else self.net.labels(t, len(t))

    def _explosion(self, loss: float, lr: float) -> Diagnostic | None:
        """A warning, once per session, when the loss explodes (training.divergence)."""
        if self.first_loss is None:
            self.first_loss = loss
        if self.warned:
            return None
        exploding = explosion(loss, self.first_loss, self.iteration, lr)
        self.warned = exploding is not None
        return exploding

    def write_curve(self) -> None:
        """curve.png of the run so far (self.curve is None without matplotlib)."""
        path = self.dir / "curve.png"
        with writing(path):
            written = plot.learning_curve(self.records, path, f"{self.dir.name} on {self.data.name}")
        self.curve = path if written else None

    def _evaluate(self, epoch: int, lr: float) -> Evaluated:
        started = time.perf_counter()
        check_finite(self.net, self.iteration)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            train_loss, train_acc = score(self.net, self.train_eval, self.data.t_train[:len(self.train_eval.x)],
                                          self.world)
            test_loss, test_acc = score(self.net, self.test_eval, self.data.t_test[:len(self.test_eval.x)],
                                        self.world)
        eval_s = time.perf_counter() - started
        steps, losses = len(self.losses), self.losses
        self.losses = []
        record = {"epoch": epoch + 1, "iteration": self.iteration,
                  "loss": float(np.mean(losses)) if losses else float("nan"),
                  "train_loss": train_loss, "train_acc": train_acc,
                  "test_loss": test_loss, "test_acc": test_acc, "lr": lr,
                  "elapsed_s": round(self.elapsed, 3), "eval_s": round(eval_s, 3),
                  "samples_per_s": round(steps * self.s.batch / max(self.elapsed - self._last_elapsed(), 1e-9), 1)}
        best = test_acc > self.best
        if best:
            self.best = test_acc
        self.records.append(record)
        self.ranks.gather_state(self.optimizer)
        if not self.world.root:
            return Evaluated(record, best)  # rank 0 writes
        if best:
            checkpoint.save(self.dir / "best.npz", self.net, None, {"iteration": self.iteration,
                                                                    "test_acc": test_acc})
        self.save()
        with writing(self.dir / "metrics.jsonl"), open(self.dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return Evaluated(record, best)

    def _last_elapsed(self) -> float:
        return self.records[-1]["elapsed_s"] if self.records else 0.0
