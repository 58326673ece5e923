"""Runs: training into a run folder (new, resumed or fine-tuned), evaluation and prediction (the
report of a run folder is specc.api.reports)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from specc import bookparams, memory
from specc.api.front import check_source, is_json, load, read, training_sizes
from specc.check import CheckedNetwork
from specc.compiler import compile as compile_network
from specc.compiler import plan
from specc.errors import DataError, Diagnostic, UsageError
from specc.network import DTYPES, Network
from specc.source import Source
from specc.training import asranks, checkpoint, imagefiles
from specc.training import data as data_mod
from specc.training.evaluate import Evaluation, check_fit, evaluate
from specc.training.loop import Trainer
from specc.training.optimizers import OPTIMIZERS, canonical
from specc.training.runfolder import RunLock, new_run_folder
from specc.training.settings import Settings
from specc.training.settings import resolve as resolve_settings
from specc.training.world import ALONE, World


def _checkpoint_file(path: str | Path, flag: str = "--weights") -> Path:
    """A checkpoint's path; a folder (a run folder, say) is refused with the files inside it to pass."""
    p = Path(path)
    if p.is_dir():
        inside = sorted(q.name for q in p.glob("*.npz"))
        example = next((n for n in ("best.npz", "weights.npz") if n in inside), inside[0] if inside else None)
        hint = (f"pass the checkpoint file inside it, e.g. {flag} {p / example}" if example
                else "pass a checkpoint file (weights.npz or best.npz of a run folder)")
        raise UsageError([Diagnostic(f"'{path}' is a folder, not a checkpoint file", None, "not-a-checkpoint",
                                     hint=hint)])
    return p


def training(path: str | Path | Source, *, out: str | Path | None = None, resume: str | Path | None = None,
             data: str | None = None, max_memory: int | None = None, init_from: str | Path | None = None,
             dataset: data_mod.Dataset | None = None, world: World = ALONE, as_ranks: int = 1,
             **flags: Any) -> "Trainer":
    """A Trainer ready to run: spec checked, settings resolved, data loaded and fitted, run folder
    prepared and locked (release it with trainer.close()). Flags: epochs, iters, batch, lr,
    optimizer, seed, dtype (None for not given). With `resume`, the run folder's saved settings
    are used and training continues from its last checkpoint (epochs/iters may extend it). With
    `init_from`, a new run starts from a checkpoint's weights and BatchNorm statistics (fine-tuning).
    `dataset` is data already loaded (then `data` only names it). `path` may be a Source already read
    (a variant of `specc compare`, say). Flags also: weight_decay, train_size, validation and
    eval_sample (see Settings). `world` (training.world.detect()) trains on the ranks of an MPI launch:
    every rank calls this; rank 0 alone locks and writes the run folder. `as_ranks` N > 1 computes every
    step as N MPI ranks would, in threads of this process (training.asranks): the trainer returned is
    rank 0's, and its close() ends the others.
    """
    if as_ranks != 1:
        return _as_ranks(as_ranks, path, world, out=out, resume=resume, data=data, max_memory=max_memory,
                         init_from=init_from, dataset=dataset, **flags)
    if init_from is not None and resume is not None:
        raise UsageError([Diagnostic("--init-from starts a new run; --resume continues one: give one of them",
                                     None, "conflicting-flags")])
    source = path if isinstance(path, Source) else read(path)
    checked = check_source(source)
    if init_from is not None:
        init_from = _checkpoint_file(init_from, "--init-from")
    if resume is not None:
        folder = _resume_folder(Path(resume), out)
    else:
        settings = resolve_settings(checked.network.train, {**flags, "data": data})
        folder = Path(out) if out is not None else new_run_folder(Path(source.name))
    # The lock comes first, so that a folder in use is refused as such, whatever it holds.
    lock = RunLock(folder) if world.root else None
    if lock is not None:
        lock.acquire()
    try:
        if resume is not None:
            config = saved_config(folder)
            settings = _resumed_settings(folder, config, flags)
            data = data or config["data"]["origin"]
        elif (folder / "weights.npz").exists():
            raise UsageError([Diagnostic(f"{folder} holds an earlier run (weights.npz); it is not overwritten",
                                         None, "folder-in-use",
                                         hint=f"continue it with --resume {folder}, or train into another --out")])
        if settings.dtype not in DTYPES:  # float16 is for inference (eval --dtype float16) only
            raise UsageError([Diagnostic(f"training runs in float32 or float64, not {settings.dtype}", None,
                                         "bad-dtype", hint="float16 is for inference: specc eval --dtype float16")])
        memory.enforce(plan(checked), source, max_memory, **training_sizes(settings))
        net = Network(compile_network(checked), source, dtype=settings.dtype, seed=settings.seed,
                      weight_decay=settings.weight_decay)
        if init_from is not None:
            checkpoint.restore(net, Path(init_from), source)
        if dataset is None:
            dataset = _dataset(settings.data if resume is None else data, checked, source,
                               from_spec=resume is None and data is None)
        dataset = data_mod.carved(dataset, settings.train_size, settings.validation, settings.carve_seed)
        trainer = Trainer(net, dataset, settings, folder, source.text,
                          "model.json" if is_json(source) else "model.net", world)
        if resume is not None:
            trainer.resume()
        elif world.root:
            trainer.start_files()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    trainer.lock = lock
    return trainer


def _as_ranks(size: int, path: str | Path | Source, world: World, *, out: str | Path | None,
              resume: str | Path | None, **kw: Any) -> "Trainer":
    """training() on `size` thread ranks: ranks 1 .. size-1 build and run theirs in their threads."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UsageError([Diagnostic(f"--as-ranks takes a positive number of ranks, not {size!r}", None,
                                     "bad-ranks", hint="for example --as-ranks 2")])
    if world.size > 1:
        raise UsageError([Diagnostic("--as-ranks stands in for an MPI launch; this is one already "
                                     f"({world.size} ranks)", None, "as-ranks-under-mpi",
                                     hint="leave out --as-ranks under mpiexec, or run without mpiexec")])
    source = path if isinstance(path, Source) else read(path)
    if out is None and resume is None:  # one folder for every rank, chosen before rank 0 makes it
        out = new_run_folder(Path(source.name))
    companions = asranks.Companions(size, lambda w: training(source, out=out, resume=resume, world=w, **kw))
    try:
        trainer = training(source, out=out, resume=resume, world=companions.root, **kw)
    except BaseException as e:
        companions.group.fail(e)
        companions.close()
        raise
    trainer.companions = companions
    return trainer


def _dataset(name: str | None, checked: CheckedNetwork, source: Source, from_spec: bool) -> data_mod.Dataset:
    """The data set to train on; an unknown name written in the spec is shown at its line there."""
    try:
        return data_mod.load(name)
    except DataError as e:
        train = checked.network.train
        span = train.key_spans.get("data") if train is not None and from_spec else None
        if span is None or e.diagnostics[0].code != "unknown-data":
            raise
        raise DataError([dataclasses.replace(d, span=span) for d in e.diagnostics], source) from None


def _resume_folder(folder: Path, out: str | Path | None) -> Path:
    """The folder to resume; `--out` may repeat it (a requeued command), not name another."""
    if out is not None and Path(out).resolve() != folder.resolve():
        raise UsageError([Diagnostic(f"--out {out} and --resume {folder} name two run folders", None,
                                     "resume-settings", hint="a resumed run continues in its own folder; "
                                                             "leave out --out, or give it the same folder")])
    if not folder.is_dir():
        raise UsageError([Diagnostic(f"{folder} is not a run folder to resume (no such folder)", None, "no-run",
                                     hint="--resume takes the --out folder of an earlier specc train")])
    return folder


def _resumed_settings(folder: Path, config: dict[str, Any], flags: dict[str, Any]) -> Settings:
    """The saved settings of a run, extended by --epochs or --iters. A flag equal to the saved setting
    is accepted (a job scheduler requeues the identical command); only a real change is refused."""
    try:
        settings = Settings(**config["settings"])
        if settings.epochs is None and settings.iters is None:
            raise TypeError("neither epochs nor iters is set")
    except (KeyError, TypeError) as e:
        raise UsageError([Diagnostic(f"{folder}/config.json is not specc's ({e})", None, "no-run")]) from None
    changes = [f"--{key} {given} differs from the run's {key} {saved}"
               for key, given, saved in _given_and_saved(settings, flags) if given != saved]
    if changes:  # (--data may point at the same data set in a new place)
        raise UsageError([Diagnostic(
            "--resume continues a run with the settings it was started with; " + ", ".join(changes), None,
            "resume-settings", hint="flags equal to the run's settings may be repeated; only --epochs or --iters "
                                    "may extend a resumed run; start a new run (another --out) to change settings")])
    if flags.get("epochs") is not None or flags.get("iters") is not None:
        settings = dataclasses.replace(settings, epochs=flags.get("epochs"), iters=flags.get("iters"))
    return settings


def _given_and_saved(settings: Settings, flags: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(flag, value given, value saved) for each setting flag given, compared as the run compares them:
    optimizer names without regard to case, numbers as numbers."""
    saved: dict[str, Any] = {"batch": settings.batch, "lr": settings.optimizer_args.get("lr"),
                             "optimizer": settings.optimizer,
                             "seed": settings.seed, "dtype": settings.dtype}
    given: dict[str, Any] = {k: flags[k] for k in saved if flags.get(k) is not None}
    if "optimizer" in given:
        given["optimizer"] = canonical(OPTIMIZERS, str(given["optimizer"])) or given["optimizer"]
    if "lr" in given and saved["lr"] is not None:
        given["lr"], saved["lr"] = float(given["lr"]), float(saved["lr"])
    return [(k, v, saved[k]) for k, v in given.items()]


def saved_config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UsageError([Diagnostic(f"{folder} is not a run folder to resume ({e})", None, "no-run",
                                     hint="--resume takes the --out folder of an earlier specc train")]) from None


def trained(path: str | Path, weights: str | Path, dtype: str = "float32") -> Network:
    """A network with the weights of a checkpoint (refused, with the lines, if they do not fit), cast
    to `dtype`. A .pkl file is one of the book's parameter files (ch07/params.pkl), imported safely."""
    net = load(path, dtype=dtype)
    file = _checkpoint_file(weights)
    if file.suffix == ".pkl":
        bookparams.import_book_params(net, file)
    else:
        checkpoint.restore(net, file, net.source)
    return net


def evaluation(path: str | Path, weights: str | Path, data: str | None = None,
               split: str = "test", dtype: str = "float32") -> tuple[Network, data_mod.Dataset, Evaluation]:
    """(network, data set, Evaluation) of trained weights on a data set's train or test split; the
    weights and the data are cast to `dtype` and the forward pass runs in it (float16 too)."""
    net = trained(path, weights, dtype)
    dataset = data_mod.load(data)
    check_fit(net, dataset)
    x, t = (dataset.x_test, dataset.t_test) if split == "test" else (dataset.x_train, dataset.t_train)
    batches = data_mod.Batches(x, dataset.scale(), net.dtype, net.input_shape)
    return net, dataset, evaluate(net, batches, t, finite=True)


@dataclasses.dataclass(frozen=True)
class Prediction:
    """Class probabilities (N, classes) of the images of every file, in order, and what to warn of."""

    probabilities: np.ndarray
    files: tuple[tuple[str, int], ...]  # each file and how many images it holds
    warnings: tuple[Diagnostic, ...]  # each names its file; `specc predict` prints them to stderr


def prediction(path: str | Path, weights: str | Path, images: str | Path | Sequence[str | Path],
               invert: bool = False) -> Prediction:
    """Class probabilities of trained weights for the images of one file or several (.npy, .npz,
    IDX, PGM or PNG), scaled as in training; `invert` turns dark-on-light images the MNIST way."""
    net = trained(path, weights)
    probabilities, files, warnings = [], [], []
    for file in [images] if isinstance(images, (str, Path)) else images:
        x, scale, said = imagefiles.predict_inputs(file, net.input_shape, invert)
        probabilities.append(net.probabilities(x.astype(net.dtype) * net.dtype.type(scale)))
        files.append((str(file), len(x)))
        warnings += said
    return Prediction(np.concatenate(probabilities), tuple(files), tuple(warnings))
