"""How many threads BLAS (NumPy's matrix products) uses while specc computes. What the user says wins:
`--threads N`, or a thread variable of the environment (OPENBLAS_NUM_THREADS and the like) read by
the BLAS itself when NumPy loaded it. Otherwise specc uses one: its networks' matrices are small
(batch 100 against a few hundred units), and a second thread costs more in hand-offs than it saves;
measured on 2 cores, TwoLayerNet and SimpleConvNet are slower on 2 threads, DeepConvNet 4% faster
(README, Performance). Under MPI each rank is one process on one core, which is one thread again."""
from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any, ContextManager

# The variables OpenBLAS, OpenMP builds, MKL and BLIS read when they load.
ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def chosen(count: int | None, environ: Any = None) -> int | None:
    """The thread count to impose, or None to leave the BLAS as the environment set it."""
    environ = os.environ if environ is None else environ
    if count is not None:
        return count
    return None if any(environ.get(v) for v in ENVIRONMENT) else 1


def limited(count: int | None = None) -> ContextManager[Any]:
    """A context in which the BLAS runs `chosen(count)` threads; the previous count comes back after."""
    n = chosen(count)
    if n is None:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")
