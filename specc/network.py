"""Stage 6: a compiled network that runs forward and backward: a fast, unchecked path for the
trainer and tools, and the book's interface on top of it (specc.bookapi, which Network inherits).

The fast path (`forward`, `forward_loss`, `backward`) takes prepared arrays and writes into
workspace buffers. With fuse=True (default) the passes are the generated module of
specc.compiler; with fuse=False every layer runs on its own through its reference
forward/backward, the path the fused one is tested against.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from specc import reference
from specc.bookapi import BookInterface
from specc.bookview import BookLayers, ParamDict
from specc.check import CheckedLayer, CheckedNetwork
from specc.compiler import Compiled, Plan, plan
from specc.errors import Diagnostic, UsageError
from specc.flatlayout import laid_flat
from specc.memory import forward_bytes_per_sample
from specc.numerics import WholeBatch, initial_values
from specc.source import Source

DTYPES = ("float32", "float64")  # for training
# float16 is for inference (specc eval --dtype float16): every parameter, input and buffer is float16
# and every element-wise result is rounded to it; NumPy's float16 matmul and sums accumulate in float32
# before rounding each result, as half-precision hardware does. Training needs float32 or float64.
INFERENCE_DTYPES = ("float16", *DTYPES)
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


class Network(BookInterface):
    """A network compiled from a checked spec."""

    def __init__(self, compiled: Compiled, source: Source | None = None, *, dtype: str = "float32",
                 fuse: bool = True, seed: int = 0, weight_decay: float = 0.0,
                 clock: Callable[[str | None, int | None], None] | None = None):
        if str(dtype) not in INFERENCE_DTYPES:
            raise UsageError([Diagnostic(f"dtype must be float16 (inference), float32 or float64, not {dtype!r}",
                                         code="bad-dtype")])
        self.compiled = compiled
        self.checked: CheckedNetwork = compiled.network
        self.source = source
        self.dtype = np.dtype(dtype)
        self.fuse = fuse
        self.seed = seed
        self.weight_decay = float(weight_decay)  # the book's weight_decay_lambda: loss + lambda/2 * sum(W^2)
        # fuse=True runs the compiled module (whatever its plan); fuse=False the reference layers
        self.plan: Plan = compiled.plan if fuse else plan(self.checked, fuse=False)
        self._clock = clock
        self._gen = self._load_code() if fuse else None
        # the generated module's init_params and init_state call the same function
        # Parameters and gradients are views of one flat array each, in the plan's order, so that
        # an optimizer updates all of them with one pass of NumPy calls (see specc.training.optimizers).
        _, self._arrays = laid_flat(initial_values(_table(self.plan.params), self.dtype, seed), self.dtype)
        self.params = ParamDict(self)
        self.state: dict[str, np.ndarray] = initial_values(_table(self.plan.state), self.dtype)
        _, self.grads = laid_flat({n: np.zeros_like(v) for n, v in self._arrays.items()}, self.dtype)
        self.rng = np.random.default_rng([seed, 1])  # dropout masks; a stream apart from init's
        self._batch: Any = WholeBatch()  # see the batch property
        self._workspaces: dict[tuple[int, bool], dict[str, np.ndarray]] = {}
        per_sample = forward_bytes_per_sample(self.plan, self.dtype.itemsize)
        self.eval_chunk = int(min(_EVAL_CHUNK, max(100, _EVAL_BYTES // max(per_sample, 1))))
        self.layers = BookLayers(self)
        self._decayed = self._decay_table()

    def _decay_table(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(weight, its gradient, a scratch array) for each parameter weight decay applies to."""
        return [(self._arrays[s.name], self.grads[s.name], np.empty_like(self._arrays[s.name]))
                for s in self.plan.params if s.decay]

    def _load_code(self) -> dict[str, Any]:
        """Execute the generated module; its functions are what the fused path calls."""
        name = f"<specc: {self.checked.network.source or 'spec'}>"
        namespace: dict[str, Any] = {"__name__": "specc_generated"}
        if self._clock is not None:  # a variant whose code reports every kernel boundary (specc bench)
            namespace["_clock"] = self._clock
        exec(compile(self.compiled.code, name, "exec"), namespace)  # noqa: S102 -- our own generated code
        return namespace

    # --- pickling and copying: the generated functions are rebuilt from the code -----------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_gen"] = None
        state["_workspaces"] = {}
        state["_clock"] = None
        state["_batch"] = WholeBatch()  # the ranks of an MPI run are not carried into a copy
        del state["params"], state["layers"], state["_decayed"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._gen = self._load_code() if self.fuse else None
        self.params = ParamDict(self)
        self.layers = BookLayers(self)
        self._decayed = self._decay_table()

    # --- what it is ------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.checked.input_shape

    @property
    def loss_layer(self) -> CheckedLayer:
        return self.checked.loss

    @property
    def lastLayer(self) -> Any:  # noqa: N802 -- the book's name
        return self.layers.last

    last_layer = lastLayer

    @property
    def code(self) -> str:
        """The generated module's source (`specc compile --emit python`)."""
        return self.compiled.code

    @property
    def batch(self) -> Any:
        """What BatchNorm's statistics and Dropout's masks see of the rest of each training batch: a
        numerics.WholeBatch (this process holds all of it), or the shares of the other MPI ranks
        (specc.training.world.Shares, which the trainer installs). Both passes use it."""
        return self._batch

    @batch.setter
    def batch(self, batch: Any) -> None:
        self._batch = batch
        if self._gen is not None:
            self._gen["batch"] = batch  # the generated functions read the module's global at each call

    @contextmanager
    def whole_batch(self) -> Iterator[None]:
        """Run something on batches this process holds whole (under MPI: without the other ranks)."""
        saved = self.batch
        self.batch = WholeBatch()
        try:
            yield
        finally:
            self.batch = saved

    def parameters(self) -> list[Parameter]:
        """Every trainable array with its gradient buffer (live: optimizers update them in place)."""
        return [Parameter(s.name, self._arrays[s.name], self.grads[s.name], s.decay) for s in self.plan.params]

    def flatten_grads(self, extra: int = 0, into: np.ndarray | None = None) -> np.ndarray:
        """Lay every gradient out in one flat array (new, or `into`), `extra` slots after them, and
        return it: self.grads become views of it, so that one MPI Allreduce moves them all. Call it
        before handing parameters() to an optimizer (their grad arrays are the views from then on)."""
        flat, self.grads = laid_flat(self.grads, self.dtype, extra, into)
        self._decayed = self._decay_table()
        return flat

    def place_params(self, flat: np.ndarray, copy: bool = True) -> None:
        """Make the parameters views of `flat` (parameter_count values, in the plan's order: memory
        the MPI ranks of one machine share, training.nodeshare), their values copied into it unless
        copy is False (another process wrote them there). As flatten_grads, before an optimizer."""
        self._arrays = laid_flat(self._arrays, self.dtype, 0, flat, copy)[1]
        self._decayed = self._decay_table()

    # --- the fast path: prepared inputs, no checks, results in workspace buffers -----------
    def workspace(self, n: int, backward: bool) -> dict[str, np.ndarray]:
        """The generated code's buffers for batch size n, allocated once; forward-only ones for prediction."""
        ws = self._workspaces.get((n, True)) or self._workspaces.get((n, backward))
        if ws is None:
            if self._gen is None:
                raise UsageError([Diagnostic("the unfused reference path has no workspace", code="no-workspace")])
            if len(self._workspaces) >= _KEEP_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))
            ws = self._workspaces[(n, backward)] = self._gen["workspace"](n, self.dtype, backward)
        return ws

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Scores for x of shape (N, *input_shape) in the network's dtype (a workspace buffer)."""
        if self._gen is not None:
            return self._gen["predict"](self._arrays, self.state, self.workspace(len(x), False), x, train, self.rng)
        return reference.forward(self, x, train)[0]

    def forward_loss(self, x: np.ndarray, t: np.ndarray, train: bool = False) -> float:
        """The loss (with the weight-decay penalty) of prepared inputs and labels (see labels())."""
        if self._gen is not None:
            value = self._gen["loss"](self._arrays, self.state, self.workspace(len(x), False), x, t, train,
                                      self.rng)
        else:
            value = reference.loss(self, x, t, train)
        return value + self.penalty()

    def backward(self, x: np.ndarray, t: np.ndarray, grad_scale: float = 1.0) -> float:
        """Training-mode loss (with the penalty), and the gradients of grad_scale times it written into
        self.grads. The trainer passes plain SGD's learning rate as grad_scale (the optimizer's
        gradient_scale), so that the scaled gradients are the update itself; 1.0 gives the gradients."""
        if self._gen is not None:  # (the workspace read straight from its table: this runs every step)
            ws = self._workspaces.get((len(x), True)) or self.workspace(len(x), True)
            value = self._gen["loss"](self._arrays, self.state, ws, x, t, True, self.rng)
            self._gen["backward"](self._arrays, self.grads, self.state, ws, x, t, grad_scale)
        else:
            value = reference.backward(self, x, t, grad_scale)
        if not self.weight_decay:
            return value
        for w, g, scratch in self._decayed:  # d/dW of lambda/2 * sum(W^2), as the book's gradient() adds it
            np.multiply(w, self.weight_decay * grad_scale, out=scratch)  # (into a buffer: nothing allocated per step)
            g += scratch
        return value + self.penalty()

    def penalty(self) -> float:
        """The weight-decay term of the loss: lambda/2 * the sum of the squared weights."""
        if not self.weight_decay:
            return 0.0
        return 0.5 * self.weight_decay * float(sum(np.vdot(w, w) for w, _, _ in self._decayed))

    def reference_forward(self, x: np.ndarray, train: bool, until: int | None = None,
                          watch: Callable[[CheckedLayer, np.ndarray], None] | None = None):
        """The layers one at a time, through their reference forward: (scores, backprops)."""
        return reference.forward(self, x, train, until, watch)

    @contextmanager
    def rewound(self) -> Iterator[None]:
        """Run something, then put the random stream and the BatchNorm statistics back as they were."""
        rng_state = self.rng.bit_generator.state
        saved = {k: v.copy() for k, v in self.state.items()}
        try:
            yield
        finally:
            self.rng.bit_generator.state = rng_state
            for k, v in saved.items():
                np.copyto(self.state[k], v)

    def astype(self, dtype: str) -> "Network":
        """A copy in another dtype: the same values, random streams and settings."""
        other = Network(self.compiled, self.source, dtype=dtype, fuse=self.fuse, seed=self.seed,
                        weight_decay=self.weight_decay)
        for k, v in self._arrays.items():
            np.copyto(other._arrays[k], v, casting="unsafe")
        for k, v in self.state.items():
            np.copyto(other.state[k], v, casting="unsafe")
        other.rng.bit_generator.state = self.rng.bit_generator.state
        return other


def _table(slots) -> dict[str, tuple]:
    """name -> (shape, init), as initial_values (and the generated module) read it."""
    return {s.name: (s.shape, s.init) for s in slots}
