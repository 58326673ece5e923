"""Numerical gradients of a Network: central differences (f(w+h) - f(w-h)) / 2h of its
training-mode loss, each evaluation with the same dropout masks (the random stream rewound)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from specc.network import Network


def parameter(net: "Network", x: np.ndarray, t: np.ndarray, name: str, indices=None,
              h: float = 1e-4) -> np.ndarray:
    """Central differences (f(w+h) - f(w-h)) / 2h of the training-mode loss for the elements
    `indices` of one parameter (all when None), each evaluation with the same dropout masks."""
    param = net._arrays[name]
    grad = np.zeros_like(param, dtype=np.float64)
    flat, gflat = param.reshape(-1), grad.reshape(-1)
    with net.rewound():
        for i in range(param.size) if indices is None else indices:
            old = flat[i]
            values = []
            for step in (h, -h):
                flat[i] = old + step
                with net.rewound():
                    values.append(net.forward_loss(x, t, True))
            flat[i] = old
            gflat[i] = (values[0] - values[1]) / (2 * h)
    return grad


def gradients(net: "Network", x: np.ndarray, t: np.ndarray, h: float = 1e-4) -> dict[str, np.ndarray]:
    """Every parameter's central differences, by name, always in float64 (in float32 the differences
    would be mostly rounding noise): a network of another dtype is copied to float64 for them."""
    exact = net if net.dtype == np.float64 else net.astype("float64")
    x64 = x.astype(np.float64)
    t64 = t.astype(np.float64) if t.dtype.kind == "f" else t
    return {name: parameter(exact, x64, t64, name, None, h) for name in net._arrays}
