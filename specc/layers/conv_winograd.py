"""The Winograd path of Convolution: when it applies, its F(m x m, 3 x 3) tile size and chunk, its
workspace, and the lines that call specc.winograd's passes."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specc.layers.base import Scratch, Shape
from specc.winograd import (
    winograd_backward,
    winograd_filters,
    winograd_filters_grad,
    winograd_forward,
    winograd_mats_size,
    winograd_pooled_backward,
    winograd_pooled_forward,
)
from specc.winograd_tiles import winograd_tile_size, winograd_work_sizes

# Winograd pays once the channel reduction is a real GEMM; with one or two input channels the
# 16 tile products cost more memory traffic than the 9 columns of im2col.
WINOGRAD_MIN_CHANNELS = 4
WINOGRAD_CHUNK_BYTES = 4 * 2**20

if TYPE_CHECKING:
    from specc.emission import Emit


class WinogradConvolution:
    """The Winograd path of Convolution, which inherits it. Not a Layer itself (nothing registers or
    lists it); it reads what Layer gives every layer: the arguments and the shapes."""

    args: dict[str, Any]
    in_shape: Shape
    out_shape: Shape

    def winograd(self) -> bool:
        """3x3, stride 1, an even output and enough channels: the Winograd path of the generated code."""
        _, oh, ow = self.out_shape
        return (self.args["kernel"] == 3 and self.args["stride"] == 1 and oh % 2 == 0 and ow % 2 == 0
                and self.in_shape[0] >= WINOGRAD_MIN_CHANNELS)

    def winograd_tile(self) -> int:
        """m of the Winograd F(m x m, 3 x 3) the generated code uses: 4 where the output divides into
        4 x 4 tiles (2.25 multiplies per output and channel pair instead of 4), else 2."""
        _, oh, ow = self.out_shape
        return 4 if oh % 4 == 0 and ow % 4 == 0 else 2

    def winograd_chunk(self) -> int:
        """Samples per chunk of the Winograd passes: their tiles and products in about 4 MB (float32)."""
        c, h, w = self.in_shape
        f, oh, ow = self.out_shape
        per_sample = sum(winograd_work_sizes(self.winograd_tile(), 1, c, f, oh, ow).values()) * 4
        return max(1, WINOGRAD_CHUNK_BYTES // per_sample)

    def _winograd_workspace(self, grad_input: bool) -> dict[str, Scratch]:
        c, f, m = self.in_shape[0], self.out_shape[0], self.winograd_tile()
        _, oh, ow = self.out_shape
        sizes = winograd_work_sizes(m, self.winograd_chunk(), c, f, oh, ow)
        out = {f"w{name}": Scratch((n,), batched=False) for name, n in sizes.items()}
        positions = (m + 2) ** 2
        out.update({"wu": Scratch((positions, f, c), batched=False), "wut": Scratch((positions, c, f), batched=False),
                    "wmats": Scratch((winograd_mats_size(m),), batched=False),
                    "wv": Scratch((winograd_tile_size(m, c, oh, ow),)),  # the transformed tiles, for the backward
                    "du": Scratch((positions, f, c), batched=False, phase="backward"),
                    "dusum": Scratch((positions, f, c), batched=False, phase="backward")})
        return out

    def _emit_winograd(self, e: Emit, relu: Emit | None = None, pool: Emit | None = None) -> None:
        # Winograd F(m x m, 3x3), a chunk of samples at a time (see specc.winograd.winograd_forward);
        # the bias is added, and its gradient taken, inside, at the products. With the ReLU after it
        # (`relu`, its Emit; Layer.absorbs), the pass applies it as it writes the output and takes
        # its gradient as it reads dy; with a pooling too (Layer.pools), it pools the tiles' outputs
        # and applies ReLU to the maxima (winograd_pooled_forward).
        c, f, oh, ow = self.in_shape[0], *self.out_shape
        pad, chunk = self.args["pad"], self.winograd_chunk()
        wu, wut, mats, v = e.buffer("wu"), e.buffer("wut"), e.buffer("wmats"), e.buffer("wv")
        names = winograd_work_sizes(self.winograd_tile(), chunk, c, f, oh, ow)
        work = "(" + ", ".join(e.buffer(f"w{name}") for name in names) + ")"
        filters = f"{e.helper(winograd_filters)}({e.param('W')}, {mats}, {wu}, {wut})"
        du, dusum = e.buffer("du"), e.buffer("dusum")
        dx = e.grad_input() if e.dx else "None"
        grads = f"{du}, {dusum}, {e.grad('b')}, {dx}"
        layout = "".join(f", {name}=True" for name, on in (("hwnc_in", e.hwnc_in), ("hwnc_out", e.hwnc_out)) if on)
        filters_grad = f"{e.helper(winograd_filters_grad)}({dusum}, {mats}, {e.grad('W')})"
        if pool is None:
            y = e.output()
            e.fwd(filters, f"{e.helper(winograd_forward)}({e.x}, {wut}, {mats}, {e.param('b')}, {pad}, {chunk}, "
                           f"{work}, {v}, {y}{', relu=True' if relu else ''}{layout})")
            dy, masked = (relu.dy, f", y={y}") if relu else (e.dy, "")
            e.bwd(f"{e.helper(winograd_backward)}({v}, {dy}, {wu}, {mats}, {pad}, {chunk}, {work}, {grads}{masked}"
                  f"{layout})", filters_grad)
            return
        size, y, later = pool.layer.args["size"], pool.output(), e.buffer("later")
        e.fwd(filters, f"{e.helper(winograd_pooled_forward)}({e.x}, {wut}, {mats}, {e.param('b')}, {pad}, {size}, "
                       f"{chunk}, {work}, {v}, {y}, {later} if train else None{layout})")
        e.bwd(f"{e.helper(winograd_pooled_backward)}({v}, {pool.dy}, {y}, {later}, {wu}, {mats}, {pad}, {size}, "
              f"{chunk}, {work}, {grads}{layout})", filters_grad)
