"""Gradient checks: backprop against central differences, per layer and per network, in float64."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specc import reference
from specc.layers.base import Labels, Layer, Runtime
from specc.network import Network

RELATIVE_TOLERANCE = 1e-5  # max |backprop - numerical| / max(|backprop|, |numerical|) that passes,
ABSOLUTE_TOLERANCE = 1e-9  # ... or max |backprop - numerical| that passes (gradients that are ~0),
# raised to the rounding noise of the differences: eps * |f| / h, with a margin
_NOISE_MARGIN = 50
STEP = 1e-6  # central-difference step; small, so ReLU and max-pool kinks are rarely straddled


@dataclass(frozen=True)
class Result:
    name: str
    shape: tuple[int, ...]
    checked: int  # elements compared
    max_abs: float
    relative: float
    tolerance: float = ABSOLUTE_TOLERANCE  # the absolute error that passes

    @property
    def passed(self) -> bool:
        return self.relative <= RELATIVE_TOLERANCE or self.max_abs <= self.tolerance

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "checked": self.checked, "max_abs_error": self.max_abs,
                "relative_error": self.relative, "passed": self.passed}


def compare(name: str, shape, analytic: np.ndarray, numeric: np.ndarray,
            tolerance: float = ABSOLUTE_TOLERANCE) -> Result:
    a, n = np.asarray(analytic, np.float64).ravel(), np.asarray(numeric, np.float64).ravel()
    err = float(np.abs(a - n).max()) if a.size else 0.0
    scale = max(float(np.abs(a).max()) if a.size else 0.0, float(np.abs(n).max()) if n.size else 0.0, 1e-12)
    return Result(name, tuple(shape), a.size, err, err / scale if err else 0.0, tolerance)


def noise_tolerance(value: float, h: float) -> float:
    """The absolute error central differences of a function near `value` make by rounding alone:
    a gradient that is exactly zero (a bias before BatchNorm) is measured as about this much."""
    return max(ABSOLUTE_TOLERANCE, _NOISE_MARGIN * np.finfo(np.float64).eps * max(1.0, abs(value)) / h)


def _sample(size: int, limit: int | None, rng: np.random.Generator) -> np.ndarray:
    return np.arange(size) if limit is None or size <= limit else np.sort(rng.choice(size, limit, replace=False))


def check_layer(layer: Layer, x: np.ndarray, params: dict[str, np.ndarray], state: dict[str, np.ndarray],
                train: bool = True, seed: int = 0, limit: int | None = None, h: float = STEP) -> list[Result]:
    """Reference backward of one layer against central differences of sum(y * dy), for the input
    and every parameter; a backward that modifies dy also gets a failing result, "dy (modified in place)"."""
    rng = np.random.default_rng(seed)
    layer_rng = np.random.default_rng(seed + 1)
    start = layer_rng.bit_generator.state
    saved = {k: v.copy() for k, v in state.items()}

    def run():
        layer_rng.bit_generator.state = start
        for k, v in saved.items():
            np.copyto(state[k], v)
        return layer.forward(params, x, train, Runtime(layer_rng, state))

    mutated: list[Result] = []
    if layer.is_loss:
        t = _labels_for(layer, len(x), rng)

        def f():
            return layer.loss(x, t)[0]

        dx = layer.loss(x, t)[1]()
        grads: dict[str, np.ndarray] = {}
    else:
        y, backprop = run()
        dy = rng.standard_normal(y.shape)
        dy_before = dy.copy()
        dx, grads = backprop(dy)
        if not np.array_equal(dy, dy_before):
            # reported, not raised: `specc gradcheck` names this layer instead of crashing
            change = float(np.abs(np.asarray(dy, np.float64) - dy_before).max())
            mutated.append(Result("dy (modified in place)", dy.shape, dy.size, change, float("inf")))
            dy = dy_before

        def f():
            return float(np.vdot(run()[0], dy))

    tolerance = noise_tolerance(f(), h)
    results = [compare("input", x.shape, dx.ravel()[_idx := _sample(x.size, limit, rng)],
                       _differences(f, x, _idx, h), tolerance)]
    for base, value in params.items():
        idx = _sample(value.size, limit, rng)
        results.append(compare(base, value.shape, grads[base].ravel()[idx], _differences(f, value, idx, h),
                               tolerance))
    run()
    return results + mutated


def _labels_for(layer: Layer, n: int, rng: np.random.Generator) -> np.ndarray:
    k = layer.out_shape[0]
    return rng.integers(0, k, n) if layer.labels is Labels.CLASSES else rng.standard_normal((n, k))


def _differences(f, array: np.ndarray, indices: np.ndarray, h: float) -> np.ndarray:
    flat = array.reshape(-1)
    out = np.empty(len(indices))
    for j, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        out[j] = (plus - minus) / (2 * h)
    return out


@dataclass(frozen=True)
class Report:
    results: list[Result]
    culprit: str | None  # the first layer whose own backward disagrees, when a check fails
    culprit_results: list[Result]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def check_network(net: Network, batch: int = 8, seed: int = 0, limit: int | None = 40,
                  h: float = STEP) -> Report:
    """Backprop vs central differences for every parameter of a float64 network on a random batch."""
    if net.dtype != np.float64:
        raise ValueError("gradient checks need a float64 network")
    rng = np.random.default_rng(seed)
    x = rng.random((batch, *net.input_shape))
    t = _labels_for(net.loss_layer.layer, batch, rng)
    with net.rewound():
        grads = net.gradient(x, t)
    with net.rewound():
        tolerance = noise_tolerance(net.forward_loss(x, t, True), h)
    results = []
    for name, value in net.params.items():
        idx = _sample(value.size, limit, rng)
        numeric = reference.numerical(net, x, t, name, idx, h).reshape(-1)[idx]
        results.append(compare(name, value.shape, grads[name].reshape(-1)[idx], numeric, tolerance))
    culprit: str | None = None
    culprit_results: list[Result] = []
    if not all(r.passed for r in results):
        culprit, culprit_results = _first_bad_layer(net, x, limit, h)
        if culprit is None and net.fuse:
            culprit = _first_bad_kernel(net, x, t)
    return Report(results, culprit, culprit_results)


def _first_bad_kernel(net: Network, x: np.ndarray, t: np.ndarray) -> str | None:
    """Every layer's reference is right, so the generated code is wrong: compare each kernel's
    output and each layer's output gradient in the workspace with the reference path's."""
    with net.rewound():
        net.backward(x, t)
        hwnc = {b.name for b in net.plan.buffers if b.scratch.hwnc}  # (H, W, N, C): back to NCHW
        ws = {k: (v.transpose(2, 3, 0, 1) if k in hwnc else v).copy() for k, v in net.workspace(len(x), True).items()}
    outputs: list[np.ndarray] = []
    with net.rewound():
        scores, backprops = net.reference_forward(x, True, watch=lambda c, y: outputs.append(y))
    layers = net.checked.layers

    def differs(a: np.ndarray, b: np.ndarray) -> bool:
        return a.shape != b.shape or not np.allclose(a, b, rtol=1e-7, atol=1e-10)

    for n, kernel in enumerate(net.plan.kernels, 1):
        last = kernel.layers[-1]
        produced = net.plan.wires[last].y
        if last < len(outputs) and produced in ws and differs(ws[produced], outputs[last]):
            return f"kernel {n} ({kernel.name}) of the generated code, in its forward pass"
    dy = net.loss_layer.layer.loss(scores, t)[1]()
    for c, bp in zip(reversed(layers[:-1]), reversed(backprops)):
        gradient = net.plan.wires[c.index].dy  # the gradient with respect to this layer's output
        if gradient in ws and differs(ws[gradient], dy):
            return f"layer {c.index + 2}, {layers[c.index + 1].layer.describe()}, in the generated backward pass"
        dy, _ = bp(dy)
    return None


def _first_bad_layer(net: Network, x: np.ndarray, limit: int | None, h: float) -> tuple[str | None, list[Result]]:
    """Check each layer on the input it actually receives; the first that fails is to blame."""
    inputs = [x]
    with net.rewound():
        net.reference_forward(x, True, watch=lambda c, y: inputs.append(y.copy()))
    for c, layer_input in zip(net.checked.layers, inputs):
        params = {base: net.params[c.names[base]].copy() for base in c.layer.param_shapes()}
        state = {base: net.state[c.names[base]].copy() for base in c.layer.buffer_shapes()}
        results = check_layer(c.layer, layer_input.copy(), params, state, limit=limit, h=h)
        if not all(r.passed for r in results):
            span = c.spec.span
            where = f" (line {span.line}, column {span.col})" if span else ""
            return f"layer {c.index + 1}, {c.layer.describe()}{where}", results
    return None, []
