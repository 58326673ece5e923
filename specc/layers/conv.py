"""Convolution: `filters` kernels of kernel x kernel over (C, H, W) images, with stride and zero padding."""
from __future__ import annotations

from specc.layers.base import (INIT, INIT_EXPECTS, NONNEGATIVE_INT, POSITIVE_INT, Arg, Layer, Shape,
                               expect_image, registered, sliding_output)


@registered
class Convolution(Layer):
    name = "Convolution"
    aliases = ("Conv",)
    doc = "2-D convolution (cross-correlation, as in the book): W is (filters, C, kernel, kernel)."
    signature = (
        Arg("filters", POSITIVE_INT, "a positive integer (the number of filters)", doc="output channels"),
        Arg("kernel", POSITIVE_INT, "a positive integer (the kernel's height and width)",
            doc="height and width of each filter"),
        Arg("stride", POSITIVE_INT, "a positive integer", default=1, doc="step between windows"),
        Arg("pad", NONNEGATIVE_INT, "a non-negative integer", default=0, doc="zeros added on each side"),
        Arg("init", INIT, INIT_EXPECTS, default="auto",
            doc="weight init: 'he', 'xavier', a standard deviation, or 'auto' (by the next activation)"),
    )
    param_names = ("W", "b")

    def infer_shape(self) -> Shape:
        _, h, w = expect_image(self.name, self.in_shape)
        k, s, p = self.args["kernel"], self.args["stride"], self.args["pad"]
        oh = sliding_output(self.name, "H", h, k, s, p, "kernel")
        ow = sliding_output(self.name, "W", w, k, s, p, "kernel")
        return (self.args["filters"], oh, ow)

    def param_shapes(self) -> dict[str, Shape]:
        c = self.in_shape[0]
        k, f = self.args["kernel"], self.args["filters"]
        return {"W": (f, c, k, k), "b": (f,)}

    def flops(self) -> int:
        f, oh, ow = self.out_shape
        c, k = self.in_shape[0], self.args["kernel"]
        return 2 * c * k * k * f * oh * ow  # one multiply-add per weight per output pixel
