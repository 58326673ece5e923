"""MPI benchmark: data-parallel training steps per second on 1 process and on 2 ranks (one BLAS thread
each, the same global batch), beside the speedup `specc plan`'s model predicts for 2 workers on shared
memory (with the Allreduce time measured here); where each rank's step time goes; and a sweep on 1
process against `mpiexec -n 2 specc sweep` of the same trials, wall time side by side.

    python benchmarks/mpi_bench.py                     # TwoLayerNet, SimpleConvNet, MultiLayerNet
    python benchmarks/mpi_bench.py --iters 400 --models simple_conv_net --no-sweep

Steps/s count training steps only: from the end of the warm-up steps to the last step, without the
evaluation (which comes after). Run it on an otherwise idle machine; `uptime` says how idle it is.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
LAUNCHER = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
MODELS = {"two_layer_net": "TwoLayerNet", "simple_conv_net": "SimpleConvNet", "multi_layer_net": "MultiLayerNet"}


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="model names under models/, comma-separated")
    p.add_argument("--iters", type=int, default=300, help="training steps per run")
    p.add_argument("--warmup", type=int, default=20, help="first steps not timed")
    p.add_argument("--batch", type=int, default=100, help="the global batch")
    p.add_argument("--repeat", type=int, default=2, help="runs per setting; the fastest counts")
    p.add_argument("--data", default=None, help="data set (default: the embedded sample)")
    p.add_argument("--no-sweep", action="store_true", help="skip the sweep comparison")
    p.add_argument("--sweep-model", default="simple_conv_net")
    p.add_argument("--sweep-lr", default="0.0003,0.001,0.003,0.01", help="the trials' learning rates")
    p.add_argument("--sweep-epochs", type=int, default=4)
    p.add_argument("--mpiexec-flags", default="", help='more flags for mpiexec, e.g. "-bind-to core"')
    p.add_argument("--worker", metavar="MODEL", help=argparse.SUPPRESS)  # one timed run (under mpiexec)
    return p.parse_args()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER}
    return {**env, **ONE_THREAD, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}


def _mpiexec() -> str:
    found = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
    if found is None:
        sys.exit('mpiexec not found: pip install "specc[mpi]"')
    return found


LAUNCH_FLAGS: list[str] = []  # --mpiexec-flags


def _launch(ranks: int, argv: list[str]) -> list[str]:
    cmd = [sys.executable, *argv]
    return [_mpiexec(), *LAUNCH_FLAGS, "-n", str(ranks), *cmd] if ranks > 1 else cmd


# --- the worker: one timed training run, on every rank of its launch ------------------------

def worker(args: argparse.Namespace) -> None:
    import numpy as np

    from specc import api
    from specc.errors import SpeccError
    from specc.training.events import Step
    from specc.training.world import World, detect

    world = detect()
    clock = {"backward": 0.0, "sample": 0.0, "allreduce": 0.0, "update": 0.0, "evaluate": 0.0}

    def timed(name, fn):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                clock[name] += time.perf_counter() - t0
        return run

    class TimedWorld(World):
        def sum(self, flat):
            t0 = time.perf_counter()
            super().sum(flat)
            clock["allreduce"] += time.perf_counter() - t0

        def sum_part(self, flat, out):  # the sharded update's Reduce_scatter (counted as the allreduce)
            t0 = time.perf_counter()
            super().sum_part(flat, out)
            clock["allreduce"] += time.perf_counter() - t0

        def gather(self, flat):  # the sharded update's Allgatherv (specc.scaling.SHARD_FROM)
            t0 = time.perf_counter()
            super().gather(flat)
            clock["update"] += time.perf_counter() - t0

    out = Path(tempfile.mkdtemp(prefix="mpi-bench-"))
    try:
        trainer = api.training(ROOT / "models" / f"{args.worker}.net", out=out / "run", data=args.data,
                               iters=args.iters, batch=args.batch, eval_sample=100, world=world)
    except SpeccError as e:
        if world.root:
            print(json.dumps({"refused": e.diagnostics[0].message}), flush=True)
        return
    trainer.world = trainer.ranks.world = TimedWorld(world.rank, world.size, world.comm, world.link)
    node = trainer.ranks.node
    if node is not None:  # ranks sharing memory: the sum of its part, the barrier after the update
        node.sum_part = timed("allreduce", node.sum_part)
        node.barrier = timed("update", node.barrier)
    trainer.net.backward = timed("backward", trainer.net.backward)
    trainer._sample = timed("sample", trainer._sample)
    trainer.optimizer.step = timed("update", trainer.optimizer.step)
    trainer._evaluate = timed("evaluate", trainer._evaluate)  # rank 0's, between steps: not counted
    began = ended = evaluated = last_loss = 0.0
    try:
        for event in trainer.run():
            if isinstance(event, Step):
                if event.iteration == args.warmup:
                    began = time.perf_counter()
                    for k in clock:
                        clock[k] = 0.0
                ended, evaluated = time.perf_counter(), clock["evaluate"]  # (the last evaluation comes after)
                last_loss = event.loss
    finally:
        trainer.close()
    steps = args.iters - args.warmup
    clock.pop("evaluate")
    report = {"rank": world.rank, "steps_per_s": steps / (ended - began - evaluated),
              "last_loss": last_loss,
              **{f"{k}_ms": v / steps * 1e3 for k, v in clock.items()}}
    if world.size > 1:
        # the Allreduce alone, of the buffer the ranks sum every step: what shared memory costs here
        flat = trainer.ranks.flat
        times = []
        for _ in range(50):
            world.comm.Barrier()
            t0 = time.perf_counter()
            world.sum(flat)
            times.append(time.perf_counter() - t0)
        report["allreduce_alone_ms"] = float(np.median(times)) * 1e3
        report["buffer_bytes"] = int(flat.nbytes)
        reports = world.comm.gather(report, root=0)
    else:
        reports = [report]
    if world.root:
        print(json.dumps({"ranks": reports, "params": trainer.net.checked.parameter_count,
                          "itemsize": trainer.net.dtype.itemsize}), flush=True)
    shutil.rmtree(out, ignore_errors=True)


# --- the driver -------------------------------------------------------------------------------

def timed_run(model: str, ranks: int, args: argparse.Namespace, messages: bool = False) -> dict:
    """The fastest of args.repeat runs on `ranks` ranks (messages: as ranks on several machines would,
    SPECC_MPI_SHARED=0, instead of sharing memory)."""
    argv = [__file__, "--worker", model, "--iters", str(args.iters), "--warmup", str(args.warmup),
            "--batch", str(args.batch)] + (["--data", args.data] if args.data else [])
    env = {**_env(), **({"SPECC_MPI_SHARED": "0"} if messages else {})}
    best: dict | None = None
    for _ in range(args.repeat):
        run = subprocess.run(_launch(ranks, argv), capture_output=True, text=True, env=env, timeout=1800)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if run.returncode != 0 or not lines:
            sys.exit(f"{model} on {ranks} rank(s) failed:\n{run.stdout}\n{run.stderr}")
        doc = json.loads(lines[-1])
        if "refused" in doc:
            return doc
        if best is None or doc["ranks"][0]["steps_per_s"] > best["ranks"][0]["steps_per_s"]:
            best = doc
    assert best is not None
    return best


def predicted(model: str, one: dict, two: dict, batch: int) -> float:
    """`specc plan`'s speedup for 2 workers (its own measurement of the step, one BLAS thread), over the
    link that the Allreduce of the gradient buffer measured here makes of shared memory."""
    alone_ms = two["ranks"][0]["allreduce_alone_ms"]
    sent_bits = 8 * one["itemsize"] * one["params"]  # 2(N-1)/N = 1 for N = 2
    link = f"{sent_bits / (alone_ms * 1e-3) / 1e9:.6g}:0"
    run = subprocess.run([sys.executable, "-m", "specc", "plan", str(ROOT / "models" / f"{model}.net"), "--workers",
                          "2", "--link", link, "--batch", str(batch), "--json"], capture_output=True, text=True,
                         env=_env(), timeout=600)
    if run.returncode != 0:
        sys.exit(f"specc plan failed:\n{run.stderr}")
    return json.loads(run.stdout)["estimates"][0]["speedup"]


def sweep_times(args: argparse.Namespace) -> tuple[float, float, int]:
    spec = ROOT / "models" / f"{args.sweep_model}.net"
    trials = len(args.sweep_lr.split(","))
    walls = []
    with tempfile.TemporaryDirectory(prefix="mpi-bench-sweep-") as tmp:
        for ranks in (1, 2):
            argv = ["-m", "specc", "sweep", str(spec), "--lr", args.sweep_lr, "--epochs", str(args.sweep_epochs),
                    "--out", str(Path(tmp) / f"sweep-{ranks}")] + (["--data", args.data] if args.data else [])
            t0 = time.perf_counter()
            run = subprocess.run(_launch(ranks, argv), capture_output=True, text=True, env=_env(), cwd=tmp,
                                 timeout=3600)
            walls.append(time.perf_counter() - t0)
            if run.returncode != 0:
                sys.exit(f"the sweep on {ranks} rank(s) failed:\n{run.stdout}\n{run.stderr}")
        same = [json.loads(line)["score"] for line in (Path(tmp) / "sweep-1" / "trials.jsonl").read_text().splitlines()]
        two = [json.loads(line)["score"] for line in (Path(tmp) / "sweep-2" / "trials.jsonl").read_text().splitlines()]
        if sorted(same) != sorted(two):
            sys.exit(f"the sweeps differ: {same} vs {two}")
    return walls[0], walls[1], trials


def main() -> None:
    args = _args()
    if args.worker:
        worker(args)
        return
    LAUNCH_FLAGS.extend(args.mpiexec_flags.split())
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores; OPENBLAS_NUM_THREADS=1 per "
          f"rank; batch {args.batch} (global), {args.iters} steps, {args.warmup} untimed", flush=True)
    header = (f"{'model':<14} {'1 process':>11} {'2 ranks':>11} {'speedup':>8} {'messages':>11} {'speedup':>8} "
              f"{'plan (shm)':>10}  last loss, 1 / 2 / messages")
    print("(2 ranks share gradients and weights in memory; messages: as ranks on several machines, SPECC_MPI_SHARED=0)")
    print(header)
    details = []
    for model in args.models.split(","):
        name = MODELS.get(model, model)
        one, two, sent = timed_run(model, 1, args), timed_run(model, 2, args), timed_run(model, 2, args, True)
        if "refused" in one or "refused" in two:
            print(f"{name:<14} skipped: {(two if 'refused' in two else one)['refused']}", flush=True)
            continue
        s1, s2, s3 = (doc["ranks"][0]["steps_per_s"] for doc in (one, two, sent))
        plan = predicted(model, one, sent, args.batch)
        line = (f"{name:<14} {s1:>7,.0f} st/s {s2:>7,.0f} st/s {s2 / s1:>7.2f}x {s3:>7,.0f} st/s {s3 / s1:>7.2f}x "
                f"{plan:>9.2f}x")
        # the same arithmetic: the last loss agrees (to float32 rounding of the reductions)
        line += "  " + " / ".join(f"{doc['ranks'][0]['last_loss']:.6f}" for doc in (one, two, sent))
        print(line, flush=True)
        details.append((name, [("1", one), ("2", two), ("2 msg", sent)]))
    print("\nwhere a step's time goes, ms per step (each rank; sum includes waiting for the other rank):")
    print("(shared memory: sum is the barrier and the rank's weighted sum of its part of every rank's gradient, and")
    print(" every update is sharded, its closing barrier counted in the update; messages: sum is the Allreduce, or")
    print(" from 100,000 parameters the Reduce_scatter of a sharded update, whose Allgatherv counts in the update)")
    print(f"{'model':<14} {'ranks':>5} {'rank':>4} {'step':>7} {'backward':>8} {'sample':>7} {'sum':>9} "
          f"{'update':>7} {'other':>7} {'allreduce alone':>15}")
    for name, docs in details:
        for label, doc in docs:
            for r in doc["ranks"]:
                step = 1e3 / r["steps_per_s"]
                other = step - r["backward_ms"] - r["sample_ms"] - r["allreduce_ms"] - r["update_ms"]
                alone = f"{r['allreduce_alone_ms']:.3f} ({r['buffer_bytes'] / 1e6:.2f} MB)" \
                    if "allreduce_alone_ms" in r else "-"
                print(f"{name:<14} {label:>5} {r['rank']:>4} {step:>7.3f} {r['backward_ms']:>8.3f} "
                      f"{r['sample_ms']:>7.3f} {r['allreduce_ms']:>9.3f} {r['update_ms']:>7.3f} {other:>7.3f} "
                      f"{alone:>15}")
    if not args.no_sweep:
        one_s, two_s, trials = sweep_times(args)
        print(f"\nspecc sweep {args.sweep_model}, {trials} trials of {args.sweep_epochs} epochs "
              f"(--lr {args.sweep_lr}):")
        print(f"  1 process {one_s:.1f} s, mpiexec -n 2 {two_s:.1f} s: {two_s / one_s:.2f} of the time "
              f"({one_s / two_s:.2f}x); the same scores")
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
