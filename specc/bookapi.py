"""The book's interface of a Network: `predict`, `loss`, `accuracy`, `gradient`,
`numerical_gradient`, `save_params` and `load_params` as in *Deep Learning from Scratch*, on top of
the fast path. They check their inputs (specc.inputs), return fresh arrays, and raise RunError at
the layer that first made a value NaN or infinite (specc.blame). `params` and `layers` are
specc.bookview's."""
from __future__ import annotations

from typing import TYPE_CHECKING, cast

import numpy as np

from specc import blame, bookparams, inputs, reference
from specc.layers.base import Labels

if TYPE_CHECKING:
    from specc.check import CheckedNetwork
    from specc.compiler import Plan
    from specc.network import Network

# Overflow and NaN are reported as RunError naming the layer; numpy's warnings would only add noise.
_quiet = np.errstate(over="ignore", invalid="ignore", divide="ignore")


class BookInterface:
    """The book's methods of Network, which inherits them. Not a network itself; it reads what
    Network has: the checked spec, the plan, the dtype, the gradients and the fast path."""

    checked: CheckedNetwork
    plan: Plan
    dtype: np.dtype
    grads: dict[str, np.ndarray]
    eval_chunk: int

    if TYPE_CHECKING:  # the fast path, as Network defines it
        def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray: ...

        def forward_loss(self, x: np.ndarray, t: np.ndarray, train: bool = False) -> float: ...

        def backward(self, x: np.ndarray, t: np.ndarray, grad_scale: float = 1.0) -> float: ...

    @property
    def _net(self) -> "Network":
        """Self as the Network it is, for the modules that take one (inputs, blame, bookparams)."""
        return cast("Network", self)

    @_quiet
    def predict(self, x, train_flg: bool = False) -> np.ndarray:
        """Scores before the loss layer (the book's predict), shape (N, outputs)."""
        x = self.input(x)
        outs = [self._finite_forward(x[i:i + self.eval_chunk], train_flg).copy()
                for i in range(0, len(x), self.eval_chunk)]
        if not outs:
            return np.empty((0, *self.checked.loss.in_shape), self.dtype)
        return np.concatenate(outs) if len(outs) != 1 else outs[0]

    @_quiet
    def loss(self, x, t, train_flg: bool = False) -> float:
        """Mean loss over the batch, with the weight-decay penalty as the book's MultiLayerNet adds it."""
        x = self._nonempty(self.input(x))
        t = self.labels(t, len(x))
        value = self.forward_loss(x, t, train_flg)
        if not np.isfinite(value):
            blame.forward(self._net, x, train_flg)
        return value

    @_quiet
    def accuracy(self, x, t) -> float:
        """The fraction of samples whose highest score is their label's (0.0 for no samples)."""
        x = self.input(x)
        t = self.labels(t, len(x))
        truth = t if t.ndim == 1 else t.argmax(axis=1)
        hits = 0
        for i in range(0, len(x), self.eval_chunk):
            hits += int((self._finite_forward(x[i:i + self.eval_chunk], False).argmax(axis=1)
                         == truth[i:i + self.eval_chunk]).sum())
        return hits / len(x) if len(x) else 0.0

    @_quiet
    def gradient(self, x, t) -> dict[str, np.ndarray]:
        """Backprop gradients of the training-mode loss, by parameter name (fresh arrays, as the book's)."""
        x = self._nonempty(self.input(x))
        t = self.labels(t, len(x))
        value = self.backward(x, t)
        if not np.isfinite(value):
            blame.forward(self._net, x, True)
        if not all(np.isfinite(g).all() for g in self.grads.values()):
            blame.backward(self._net, x, t)
        return {k: v.copy() for k, v in self.grads.items()}

    @_quiet
    def numerical_gradient(self, x, t, h: float = 1e-4) -> dict[str, np.ndarray]:
        """Central differences (f(w+h) - f(w-h)) / 2h of the training-mode loss, as in the book.

        Always computed in float64, whatever the network's dtype (in float32 the differences
        would be mostly rounding noise): a float32 network is copied to float64 for it. Each
        evaluation uses the same dropout masks (the random stream is rewound), which are also
        the masks the next gradient() call will use.
        """
        x = self._nonempty(self.input(x))
        t = self.labels(t, len(x))
        return reference.numerical_gradients(self._net, x, t, h)

    @_quiet
    def probabilities(self, x) -> np.ndarray:
        """Class probabilities (softmax of the scores) for SoftmaxWithLoss networks; scores otherwise."""
        scores = self.predict(x)
        if self.plan.labels is not Labels.CLASSES:
            return scores
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def _finite_forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        """forward, raising RunError at the first layer that made the scores NaN or infinite."""
        scores = self.forward(x, train)
        if not np.isfinite(scores).all():
            blame.forward(self._net, x, train)
        return scores

    # --- inputs (checked and converted by specc.inputs) -------------------------------------
    def input(self, x) -> np.ndarray:
        """x as (N, *input_shape) in the network's dtype; flat and image layouts both fit."""
        return inputs.samples(self._net, x)

    def labels(self, t, n: int) -> np.ndarray:
        """Class indices (N,) for SoftmaxWithLoss, targets (N, k) for MeanSquaredError."""
        return inputs.labels(self._net, t, n)

    def _nonempty(self, x: np.ndarray) -> np.ndarray:
        return inputs.nonempty(self._net, x)

    # --- the book's files (specc.bookparams) --------------------------------------------------
    def save_params(self, file_name: str = "params.pkl") -> None:
        """Save the parameters as the book does, in specc's .npz format (never a pickle), whatever the name."""
        bookparams.save_params(self._net, file_name)

    def load_params(self, file_name: str = "params.pkl") -> None:
        """Load what save_params wrote (any .npz), or import one of the book's .pkl files safely.

        A book .pkl goes through specc.import_book_params: a restricted unpickler that builds NumPy
        arrays only, with the book's test-time Dropout factor folded into the parameters.
        """
        bookparams.load_params(self._net, file_name)
