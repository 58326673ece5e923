"""BatchNorm: normalise each feature (each channel, for images) over the batch, then scale and shift."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from specc.layers.args import Arg, ArgWarning
from specc.layers.base import Forward, Layer, Params, Runtime, Scratch, Shape, size
from specc.layers.registry import registered

if TYPE_CHECKING:
    from specc.emission import Emit


@registered
class BatchNorm(Layer):
    name = "BatchNorm"
    spans_batch = True  # the mean and variance are the whole batch's, on every MPI rank
    output_scales = ("gamma", "beta")
    aliases = ("BatchNormalization",)
    foreign_names = dict.fromkeys(("BatchNorm1d", "BatchNorm2d", "BatchNormalization1D", "BatchNormalization2D"),
                                  "specc's BatchNorm works on vectors (per feature) and images (per channel) "
                                  "alike: write BatchNorm")
    doc = "Batch normalisation with learned scale (gamma) and shift (beta); running statistics for inference."
    signature = (
        Arg("momentum", {"type": "number", "minimum": 0, "maximum": 1}, "a number from 0 to 1",
            default=0.9, doc="running statistics: r = momentum * r + (1 - momentum) * batch"),
        Arg("eps", {"type": "number", "exclusiveMinimum": 0, "maximum": 1}, "a small positive number",
            default=1e-6, doc="added to the variance before the square root (the book's 10e-7)"),
    )
    param_names = ("gamma", "beta")
    flops_per_element = 7  # mean, centre, square, mean, normalise, scale, shift
    fusion_head = True

    @classmethod
    def lint(cls, args) -> list[ArgWarning]:
        # momentum=0 is left alone: each batch replaces the statistics, noisy but working.
        if args.get("momentum") == 1:
            return [ArgWarning("momentum", "momentum=1 never updates the running statistics; inference will "
                                           "use mean 0 and variance 1", "the book uses 0.9: r = momentum * r + "
                                           "(1 - momentum) * batch", "frozen-statistics")]
        return []

    def features(self) -> Shape:
        # (C, H, W) images are normalised per channel; vectors per feature.
        return (self.in_shape[0],)

    def param_shapes(self) -> dict[str, Shape]:
        return {"gamma": self.features(), "beta": self.features()}

    def buffer_shapes(self) -> dict[str, Shape]:
        return {"running_mean": self.features(), "running_var": self.features()}

    def param_init(self, default_init: str) -> dict[str, tuple]:
        return {"gamma": ("ones",), "beta": ("zeros",)}

    def state_init(self) -> dict[str, tuple]:
        return {"running_mean": ("zeros",), "running_var": ("ones",)}

    def workspace(self, grad_input: bool) -> dict[str, Scratch]:
        c = self.in_shape[0]
        # stats: the batch's per-feature sums, then its count of values per feature (C + 1,);
        # sums: the backward's sums of dy * xn and of dy (2C,), reduced over MPI ranks for dx
        return {"xc": Scratch(self.in_shape), "xn": Scratch(self.in_shape),
                "std": Scratch(self._view(), batched=False), "stats": Scratch((c + 1,), batched=False),
                "tmp": Scratch(self.in_shape, phase="backward"),
                "sums": Scratch((2 * c,), batched=False, phase="backward")}

    def _axes(self) -> tuple[int, ...]:
        return (0, *range(2, len(self.in_shape) + 1))  # every axis but the feature axis

    def _view(self) -> tuple[int, ...]:
        return (1, self.in_shape[0]) + (1,) * (len(self.in_shape) - 1)  # broadcasts (C,) over x

    def forward(self, p: Params, x: np.ndarray, train: bool, rt: Runtime) -> Forward:
        axes, view = self._axes(), self._view()
        eps, momentum = self.args["eps"], self.args["momentum"]
        rm, rv = rt.state["running_mean"], rt.state["running_var"]
        if train:
            # Two passes over the batch, each a sum that rt.batch completes with the other MPI ranks'
            # shares (nothing to do alone): the mean, then the mean squared deviation from it.
            # (C + 1,): the per-feature sums and the values per feature
            stats = rt.batch.sum(np.append(x.sum(axis=axes), x.size // x.shape[1]).astype(x.dtype))
            m = stats[-1]  # values per feature in the whole batch
            mu = (stats[:-1] / m).reshape(view)
            xc = x - mu
            var = (rt.batch.sum((xc * xc).sum(axis=axes)) / m).reshape(view)
            rm *= momentum
            rm += (1 - momentum) * mu.reshape(-1)
            rv *= momentum
            rv += (1 - momentum) * var.reshape(-1)
        else:
            xc = x - rm.reshape(view)
            var = rv.reshape(view)
        std = np.sqrt(var + eps)
        xn = xc / std
        gamma = p["gamma"].reshape(view)
        y = xn * gamma + p["beta"].reshape(view)

        def backprop(dy):
            grads = {"gamma": (xn * dy).sum(axis=axes), "beta": dy.sum(axis=axes)}
            dxn = dy * gamma
            if not train:  # running statistics are constants: a per-feature affine map
                return dxn / std, grads
            # d/dx of (x - mean) / std over the batch, in its short form; the means are the whole
            # batch's (rt.batch adds the other MPI ranks' sums)
            sums = rt.batch.grad_sum(np.concatenate([dxn.sum(axis=axes), (dxn * xn).sum(axis=axes)]))
            c = len(sums) // 2
            dx = (dxn - (sums[:c] / m).reshape(view) - xn * (sums[c:] / m).reshape(view)) / std
            return dx, grads

        return y, backprop

    def emit(self, e: Emit) -> None:
        axes, view = self._axes(), self._view()
        eps, momentum = self.args["eps"], self.args["momentum"]
        xc, xn, std = e.buffer("xc"), e.buffer("xn"), e.buffer("std")
        rm, rv = e.state("running_mean"), e.state("running_var")
        y = e.output()
        stats, c = e.buffer("stats"), self.in_shape[0]
        count = size(self.in_shape) // c  # values per feature in one sample
        batch = e.batch()
        e.fwd("if train:",
              # two passes, each a sum that `batch` completes with the other MPI ranks' shares (the
              # identity alone): the mean, then the mean squared deviation from it
              "    # the whole batch's mean, then variance: stats = per-feature sums and the count",
              f"    np.sum({e.x}, axis={axes}, out={stats}[:{c}])",
              f"    {stats}[{c}] = N * {count}",
              f"    {batch}.sum({stats})",
              f"    mu = ({stats}[:{c}] / {stats}[{c}]).reshape({view})",
              f"    np.subtract({e.x}, mu, out={xc})",
              f"    np.multiply({xc}, {xc}, out={xn})",
              f"    np.sum({xn}, axis={axes}, out={stats}[:{c}])",
              f"    {batch}.sum({stats}[:{c}])",
              f"    var = ({stats}[:{c}] / {stats}[{c}]).reshape({view})",
              f"    {rm} *= {momentum!r}",
              f"    {rm} += (1 - {momentum!r}) * mu.reshape(-1)",
              f"    {rv} *= {momentum!r}",
              f"    {rv} += (1 - {momentum!r}) * var.reshape(-1)",
              f"    np.sqrt(var + {eps!r}, out={std})",
              "else:",
              f"    np.subtract({e.x}, {rm}.reshape({view}), out={xc})",
              f"    np.sqrt({rv}.reshape({view}) + {eps!r}, out={std})",
              f"np.divide({xc}, {std}, out={xn})",
              f"np.multiply({xn}, {e.param('gamma')}.reshape({view}), out={y})",
              f"{y} += {e.param('beta')}.reshape({view})")
        tmp = e.buffer("tmp")
        e.bwd(f"np.multiply({xn}, {e.dy}, out={tmp})",
              f"np.sum({tmp}, axis={axes}, out={e.grad('gamma')})",
              f"np.sum({e.dy}, axis={axes}, out={e.grad('beta')})")
        if e.dx:
            # The reference's dx = (dxn - mean(dxn) - xn * mean(dxn * xn)) / std with dxn = dy * gamma,
            # from the two sums just taken: mean(dxn) = gamma * dbeta / M and mean(dxn * xn) =
            # gamma * dgamma / M, so dx = (gamma / std) * (dy - dbeta / M - xn * dgamma / M): three
            # passes. The sums are the whole batch's (`batch` adds the other MPI ranks'), M its count.
            dx, sums = e.grad_input(), e.buffer("sums")
            g = f"{e.param('gamma')}.reshape({view})"
            e.bwd("# the whole batch's sums of dy * xn and dy, at this process's scale",
                  f"np.copyto({sums}[:{c}], {e.grad('gamma')})",
                  f"np.copyto({sums}[{c}:], {e.grad('beta')})",
                  f"{batch}.grad_sum({sums})",
                  f"scale = {g} / {std}",
                  f"np.multiply({xn}, ({sums}[:{c}] / {stats}[{c}]).reshape({view}), out={dx})",
                  f"np.subtract({e.dy}, {dx}, out={dx})",
                  f"{dx} -= ({sums}[{c}:] / {stats}[{c}]).reshape({view})",
                  f"{dx} *= scale")
