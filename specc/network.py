"""Stage 6: a compiled network that runs forward and backward, with the book's interface.

`predict`, `loss`, `accuracy`, `gradient`, `numerical_gradient` and `params` behave as in
*Deep Learning from Scratch*, so a learner's code runs unchanged. With fuse=True (default) the
passes are the generated module of specc.compiler; with fuse=False every layer runs on its
own through its reference forward/backward, the path the fused one is tested against.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from specc.check import CheckedLayer, CheckedNetwork
from specc.compiler import Plan, generate, load, plan
from specc.errors import DataError, Diagnostic, Label, RunError, UsageError
from specc.layers.base import Runtime, fmt_shape, size
from specc.memory import forward_bytes_per_sample
from specc.numerics import initial_values
from specc.source import Source

DTYPES = ("float32", "float64")
# Overflow and NaN are reported as RunError naming the layer; numpy's warnings would only add noise.
_quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")
_EVAL_CHUNK = 2000  # at most this many samples per forward pass when predicting on a whole data set
_EVAL_BYTES = 64 * 1024**2  # ... and no more than this in forward buffers (conv networks get smaller chunks)
_KEEP_WORKSPACES = 3  # batch sizes whose buffers are kept (training, evaluation, a last partial batch)


@dataclass
class Parameter:
    """A trainable array and its gradient, as optimizers see them."""

    name: str
    value: np.ndarray
    grad: np.ndarray
    decay: bool  # weight decay applies (weights, not biases or BatchNorm's scale and shift)


class Network:
    """A network compiled from a checked spec."""

    def __init__(self, checked: CheckedNetwork, source: Source | None = None, *, dtype: str = "float32",
                 fuse: bool = True, seed: int = 0, clock: Callable[[str | None, int | None], None] | None = None):
        if str(dtype) not in DTYPES:
            raise UsageError([Diagnostic(f"dtype must be float32 or float64, not {dtype!r}", code="bad-dtype")])
        self.checked = checked
        self.source = source
        self.dtype = np.dtype(dtype)
        self.fuse = fuse
        self.seed = seed
        self.plan: Plan = plan(checked, fuse)
        self.code: str = generate(checked, plan(checked, True))
        name = f"<specc: {checked.network.source or 'spec'}>"
        if clock is not None:  # a variant of the code that reports every kernel boundary (specc bench)
            self._gen: dict[str, Any] | None = load(generate(checked, self.plan, timed=True), name, _clock=clock)
        else:
            self._gen = load(self.code, name) if fuse else None
        # the generated module's init_params and init_state call the same function
        self.params: dict[str, np.ndarray] = initial_values(self.plan.params, self.dtype, seed)
        self.state: dict[str, np.ndarray] = initial_values(self.plan.state, self.dtype)
        self.grads: dict[str, np.ndarray] = {n: np.zeros_like(v) for n, v in self.params.items()}
        self.rng = np.random.default_rng([seed, 1])  # dropout masks; a stream apart from init's
        self._workspaces: dict[tuple[int, bool], dict[str, np.ndarray]] = {}
        per_sample = forward_bytes_per_sample(checked, self.plan, self.dtype.itemsize)
        self.eval_chunk = int(min(_EVAL_CHUNK, max(100, _EVAL_BYTES // max(per_sample, 1))))
        self._loss_layer = checked.loss

    # --- the book's interface -----------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.checked.input_shape

    @property
    def layers(self) -> tuple[CheckedLayer, ...]:
        return self.checked.layers

    @_quiet
    def predict(self, x, train_flg: bool = False) -> np.ndarray:
        """Scores before the loss layer (the book's predict), shape (N, outputs)."""
        x = self.input(x)
        outs = [self._finite_predict(x[i:i + self.eval_chunk], train_flg).copy()
                for i in range(0, len(x), self.eval_chunk)]
        return np.concatenate(outs) if len(outs) != 1 else outs[0]

    @_quiet
    def loss(self, x, t, train_flg: bool = False) -> float:
        x = self.input(x)
        t = self.labels(t, len(x))
        value = self._loss(x, t, train_flg)
        if not np.isfinite(value):
            self._blame_forward(x, t, train_flg)
        return value

    @_quiet
    def accuracy(self, x, t) -> float:
        x = self.input(x)
        t = self.labels(t, len(x))
        truth = t if t.ndim == 1 else t.argmax(axis=1)
        hits = 0
        for i in range(0, len(x), self.eval_chunk):
            hits += int((self._finite_predict(x[i:i + self.eval_chunk], False).argmax(axis=1)
                         == truth[i:i + self.eval_chunk]).sum())
        return hits / len(x) if len(x) else 0.0

    @_quiet
    def gradient(self, x, t) -> dict[str, np.ndarray]:
        """Backprop gradients of the training-mode loss, by parameter name (valid until the next call)."""
        x = self.input(x)
        t = self.labels(t, len(x))
        value = self._gradient(x, t)
        if not np.isfinite(value):
            self._blame_forward(x, t, True)
        if not all(np.isfinite(g).all() for g in self.grads.values()):
            self._blame_backward(x, t)
        return dict(self.grads)

    @_quiet
    def numerical_gradient(self, x, t, h: float = 1e-4) -> dict[str, np.ndarray]:
        """Central differences (f(w+h) - f(w-h)) / 2h of the training-mode loss, as in the book.

        Each evaluation uses the same dropout masks (the random stream is rewound), which
        are also the masks the next gradient() call will use.
        """
        x = self.input(x)
        t = self.labels(t, len(x))
        return {name: self._numerical(x, t, name, None, h) for name in self.params}

    @_quiet
    def probabilities(self, x) -> np.ndarray:
        """Class probabilities (softmax of the scores) for SoftmaxWithLoss networks; scores otherwise."""
        scores = self.predict(x)
        if self.plan.labels != "index":
            return scores
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def parameters(self) -> list[Parameter]:
        return [Parameter(n, self.params[n], self.grads[n], n.startswith("W")) for n in self.params]

    # --- inputs ---------------------------------------------------------------------------
    def input(self, x) -> np.ndarray:
        """x as (N, *input_shape) in the network's dtype; flat and image layouts both fit."""
        x = np.asarray(x)
        want = self.input_shape
        if x.ndim >= 1 and x.shape[1:] == want:
            pass
        elif x.ndim >= 2 and size(x.shape[1:]) == size(want):
            x = x.reshape(len(x), *want)
        elif x.shape == want or (x.ndim == 1 and x.size == size(want)):
            x = x.reshape(1, *want)  # one sample without its batch axis, flat or shaped
        else:
            raise self._input_error(x.shape)
        return x.astype(self.dtype, copy=False)

    def labels(self, t, n: int) -> np.ndarray:
        """Class indices (N,) for SoftmaxWithLoss, targets (N, k) for MeanSquaredError.

        One-hot or index labels are told apart by their number of dimensions, never by size.
        """
        t = np.asarray(t)
        if t.ndim == 0:
            t = t.reshape(1)  # the label of one sample, as input() takes one sample without its batch axis
        k = self._loss_layer.out_shape[0]
        if len(t) != n:
            raise self._data_error(f"{n} inputs but {len(t)} labels", "give one label per input")
        if self.plan.labels == "index":
            if t.ndim == 2 and t.shape[1] == k:
                # argmax of anything else (soft labels, an all-zero row) would change the loss silently
                if t.size and not (((t == 0) | (t == 1)).all() and (t.sum(axis=1) == 1).all()):
                    raise self._data_error("one-hot labels must have a single 1 in each row and 0 elsewhere",
                                           "give class indices (N,) or one-hot rows (N, classes)")
                t = t.argmax(axis=1)
            elif t.ndim != 1:
                raise self._data_error(f"labels of shape {t.shape} fit neither class indices (N,) nor one-hot "
                                       f"(N, {k})", None)
            if t.size and (not np.issubdtype(t.dtype, np.integer) and not np.all(t == np.round(t))):
                raise self._data_error("class labels must be whole numbers", None)
            t = t.astype(np.intp, copy=False)
            if t.size and (t.min() < 0 or t.max() >= k):
                raise self._data_error(f"a label is {t.min() if t.min() < 0 else t.max()}, but the network has "
                                       f"{k} classes (0 to {k - 1})",
                                       "the last Affine layer sets the number of classes")
            return t
        if t.ndim == 1 and np.issubdtype(t.dtype, np.integer):
            t = np.eye(k, dtype=self.dtype)[t]
        if t.shape != (n, k):
            raise self._data_error(f"targets of shape {t.shape} do not fit outputs (N, {k})", None)
        return t.astype(self.dtype, copy=False)

    # --- the two paths ----------------------------------------------------------------------
    def _workspace(self, n: int, backward: bool) -> dict[str, np.ndarray]:
        """Buffers for batch size n, allocated once; forward-only ones for prediction."""
        ws = self._workspaces.get((n, True)) or self._workspaces.get((n, backward))
        if ws is None:
            if len(self._workspaces) >= _KEEP_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))
            assert self._gen is not None  # workspaces belong to the generated code's path only
            ws = self._workspaces[(n, backward)] = self._gen["workspace"](n, self.dtype, backward)
        return ws

    def _predict(self, x: np.ndarray, train: bool) -> np.ndarray:
        if self._gen is not None:
            return self._gen["predict"](self.params, self.state, self._workspace(len(x), False), x, train,
                                        self.rng)
        scores, _ = self._forward_reference(x, train)
        return scores

    def _finite_predict(self, x: np.ndarray, train: bool) -> np.ndarray:
        """_predict, raising RunError at the first layer that made the scores NaN or infinite."""
        scores = self._predict(x, train)
        if not np.isfinite(scores).all():
            self._blame_forward(x, None, train)
        return scores

    def _loss(self, x: np.ndarray, t: np.ndarray, train: bool) -> float:
        if self._gen is not None:
            return self._gen["loss"](self.params, self.state, self._workspace(len(x), False), x, t, train, self.rng)
        scores, _ = self._forward_reference(x, train)
        return self._loss_layer.layer.loss(scores, t)[0]

    def _gradient(self, x: np.ndarray, t: np.ndarray) -> float:
        """Training-mode loss, with the gradients written into self.grads."""
        if self._gen is not None:
            ws = self._workspace(len(x), True)
            value = self._gen["loss"](self.params, self.state, ws, x, t, True, self.rng)
            self._gen["backward"](self.params, self.grads, self.state, ws, x, t)
            return value
        scores, backprops = self._forward_reference(x, True)
        value, back = self._loss_layer.layer.loss(scores, t)
        dy = back()
        for c, bp in zip(reversed(self.layers[:-1]), reversed(backprops)):
            dy, grads = bp(dy)
            for base, g in grads.items():
                np.copyto(self.grads[_named(c, base)], g)
        return value

    def _forward_reference(self, x: np.ndarray, train: bool, until: int | None = None,
                           watch: Callable[[CheckedLayer, np.ndarray], None] | None = None):
        backprops = []
        for c in self.layers[:-1] if until is None else self.layers[:until]:
            p = {base: self.params[_named(c, base)] for base in c.layer.param_shapes()}
            state = {base: self.state[_named(c, base)] for base in c.layer.buffer_shapes()}
            x, bp = c.layer.forward(p, x, train, Runtime(self.rng, state))
            backprops.append(bp)
            if watch is not None:
                watch(c, x)
        return x, backprops

    def _numerical(self, x, t, name: str, indices, h: float) -> np.ndarray:
        """Central differences for the elements `indices` of one parameter (all when None)."""
        param = self.params[name]
        grad = np.zeros_like(param, dtype=np.float64)
        rng_state = self.rng.bit_generator.state
        saved_state = {k: v.copy() for k, v in self.state.items()}
        flat, gflat = param.reshape(-1), grad.reshape(-1)
        for i in range(param.size) if indices is None else indices:
            old = flat[i]
            values = []
            for step in (h, -h):
                flat[i] = old + step
                self.rng.bit_generator.state = rng_state
                values.append(self._loss(x, t, True))
            flat[i] = old
            gflat[i] = (values[0] - values[1]) / (2 * h)
        self.rng.bit_generator.state = rng_state
        for k, v in saved_state.items():
            np.copyto(self.state[k], v)
        return grad

    # --- runtime errors point at the .net line -------------------------------------------------
    def _layer_diagnostic(self, c: CheckedLayer, message: str, hint: str | None, code: str) -> Diagnostic:
        notes = tuple(Label(o.call, f"from {o.block}" if o.block else f"copy {o.repeat} of {o.of}")
                      for o in c.spec.origin if o.call)
        return Diagnostic(message, c.spec.span, code, f"layer {c.index + 1}", hint, notes)

    def _blame_forward(self, x, t, train: bool) -> None:
        """Find the first layer whose output is not finite and raise RunError naming it."""
        found: list[CheckedLayer] = []

        def watch(c, y):
            if not found and not np.isfinite(y).all():
                found.append(c)

        rng_state = self.rng.bit_generator.state
        saved_state = {k: v.copy() for k, v in self.state.items()}
        scores, _ = self._forward_reference(x, train, watch=watch)
        self.rng.bit_generator.state = rng_state
        for k, v in saved_state.items():
            np.copyto(self.state[k], v)
        culprit = found[0] if found else self._loss_layer
        what = "its input is not finite" if not np.isfinite(x).all() and culprit is self.layers[0] else \
            "produced NaN or infinity in the forward pass"
        raise RunError([self._layer_diagnostic(
            culprit, f"{culprit.layer.describe()} {what}",
            "lower the learning rate, or check the initial weights (init=he or init=xavier) and the input data",
            "not-finite")], self.source)

    def _blame_backward(self, x, t) -> None:
        scores, backprops = self._forward_reference(x, True)
        _, back = self._loss_layer.layer.loss(scores, t)
        dy = back()
        culprit = self._loss_layer
        for c, bp in zip(reversed(self.layers[:-1]), reversed(backprops)):
            if not np.isfinite(dy).all():
                break
            culprit = c
            dy, grads = bp(dy)
            if not all(np.isfinite(g).all() for g in grads.values()):
                break
        raise RunError([self._layer_diagnostic(
            culprit, f"{culprit.layer.describe()} produced NaN or infinity in the backward pass",
            "lower the learning rate; very large activations overflow their gradients", "not-finite")],
            self.source)

    def _input_error(self, got: tuple[int, ...]) -> DataError:
        first = self.layers[0]
        net = self.checked.network
        span = net.input_span or first.spec.span
        shown = "(" + ", ".join(map(str, got)) + ")"
        return DataError([Diagnostic(
            f"the input has shape {shown}, but the network expects {fmt_shape(self.input_shape)}", span,
            "input-shape", f"expects {fmt_shape(self.input_shape)}",
            "inputs are (N, features) or (N, channels, height, width) batches with the declared size")],
            self.source)

    def _data_error(self, message: str, hint: str | None) -> DataError:
        return DataError([Diagnostic(message, self._loss_layer.spec.span, "labels", "", hint)], self.source)

    # --- the book's parameter files (specc.bookparams) ---------------------------------------
    def save_params(self, file_name: str = "params.pkl") -> None:
        """Save the parameters as the book does, in specc's .npz format (never a pickle), whatever the name."""
        from specc import bookparams  # imported here: bookparams builds on specc.checkpoint, which imports this module

        bookparams.save_params(self, file_name)

    def load_params(self, file_name: str = "params.pkl") -> None:
        """Load what save_params wrote (any .npz), or import one of the book's .pkl files safely.

        A book .pkl goes through specc.import_book_params: a restricted unpickler that builds NumPy
        arrays only, with the book's test-time Dropout factor folded into the parameters.
        """
        from specc import bookparams

        bookparams.load_params(self, file_name)


def _named(c: CheckedLayer, base: str) -> str:
    """The numbered name of one of a layer's parameters or buffers: W -> W2."""
    for name in (*c.params, *c.buffers):
        if name.rstrip("0123456789") == base:
            return name
    raise KeyError(base)

