"""2 MPI ranks against 1 process: the same spec, seed, global batch and data, trained by `specc train`
on each, and the largest absolute differences of the final parameters, BatchNorm statistics and
metrics printed side by side (README, "Training on several processes"); and against 1 process
computing as the ranks do (`specc train --as-ranks N`), which sums in their order.

    python benchmarks/mpi_equality.py --iters 500 [--ranks 2] [--data mnist] [--dtype float64 float32]

Needs mpi4py and mpiexec (pip install "specc[mpi]"). One BLAS thread per process.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("two_layer_net.net", "simple_conv_net.net", "multi_layer_net.net")  # the last: BatchNorm + Dropout
TIMINGS = ("elapsed_s", "eval_s", "samples_per_s")
LAUNCHER = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


def train(model: str, out: Path, ranks: int, iters: int, dtype: str, data: str | None, *flags: str) -> float:
    cmd = [sys.executable, "-m", "specc", "train", str(ROOT / "models" / model), "--iters", str(iters),
           "--dtype", dtype, "--out", str(out), *flags] + (["--data", data] if data else [])
    if ranks > 1:
        mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
        if mpiexec is None:
            sys.exit('no mpiexec: pip install "specc[mpi]"')
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    started = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{run.stdout}\n{run.stderr}")
    return time.perf_counter() - started


def differences(a: Path, b: Path) -> tuple[float, float, float]:
    """Max abs differences of (parameters, state, metrics) between two run folders."""
    wa, wb = np.load(a / "weights.npz"), np.load(b / "weights.npz")
    keys = sorted(k for k in wa.files if k.startswith(("param/", "state/")))
    assert keys == sorted(k for k in wb.files if k.startswith(("param/", "state/")))
    params = max((float(np.abs(wa[k].astype(np.float64) - wb[k]).max()) for k in keys if k.startswith("param/")),
                 default=0.0)
    state = max((float(np.abs(wa[k].astype(np.float64) - wb[k]).max()) for k in keys if k.startswith("state/")),
                default=0.0)
    ma = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    mb = [json.loads(line) for line in (b / "metrics.jsonl").read_text().splitlines()]
    assert len(ma) == len(mb)
    metrics = max((abs(ra[k] - rb[k]) for ra, rb in zip(ma, mb) for k in ra if k not in TIMINGS), default=0.0)
    return params, state, metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=500)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--data", default=None, help="a data set for specc train --data (default: the embedded sample)")
    ap.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    args = ap.parse_args()
    print(f"{args.iters} iterations, 1 process vs {args.ranks} ranks, data {args.data or 'embedded sample'}; "
          "max abs differences")
    print(f"{'model':<22} {'dtype':<8} {'params':>10} {'BN state':>10} {'metrics':>10} {'1 proc s':>9} "
          f"{f'{args.ranks} ranks s':>10} {'as-ranks: params, metrics':>26}   "
          "float32 vs float64, 1 process: params, metrics")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for dtype in args.dtype:
                one, many = Path(tmp, f"{model}-{dtype}-1"), Path(tmp, f"{model}-{dtype}-{args.ranks}")
                t1 = train(model, one, 1, args.iters, dtype, args.data)
                tn = train(model, many, args.ranks, args.iters, dtype, args.data)
                p, s, m = differences(one, many)
                line = f"{model:<22} {dtype:<8} {p:>10.1e} {s:>10.1e} {m:>10.1e} {t1:>9.1f} {tn:>10.1f}"
                threads = Path(tmp, f"{model}-{dtype}-as-{args.ranks}")
                train(model, threads, 1, args.iters, dtype, args.data, "--as-ranks", str(args.ranks))
                pa, _, ma = differences(many, threads)
                line += f" {f'{pa:.1e}, {ma:.1e}':>26}"
                exact = Path(tmp, f"{model}-float64-1")
                if dtype == "float32" and exact.exists():  # how far float32 rounding alone takes the run
                    p64, _, m64 = differences(exact, one)
                    line += f"   {p64:.1e}, {m64:.1e}"
                print(line, flush=True)

if __name__ == "__main__":
    main()
