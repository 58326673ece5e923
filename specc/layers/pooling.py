"""Pooling: the maximum over size x size windows of each channel."""
from __future__ import annotations

from specc.layers.base import NONNEGATIVE_INT, POSITIVE_INT, Arg, Layer, Shape, expect_image, registered, sliding_output


@registered
class Pooling(Layer):
    name = "Pooling"
    aliases = ("MaxPooling", "MaxPool")
    doc = "Max pooling over size x size windows (per channel)."
    signature = (
        Arg("size", POSITIVE_INT, "a positive integer (the window's height and width)", default=2,
            doc="window height and width"),
        Arg("stride", POSITIVE_INT, "a positive integer", default=lambda a: a.get("size"),
            doc="step between windows; defaults to the window size"),
        Arg("pad", NONNEGATIVE_INT, "a non-negative integer", default=0, doc="padding on each side"),
    )

    def infer_shape(self) -> Shape:
        c, h, w = expect_image(self.name, self.in_shape)
        k, s, p = self.args["size"], self.args["stride"], self.args["pad"]
        return (c, sliding_output(self.name, "H", h, k, s, p, "size"),
                sliding_output(self.name, "W", w, k, s, p, "size"))

    def flops(self) -> int:
        c, oh, ow = self.out_shape
        return c * oh * ow * self.args["size"] ** 2  # one compare per window element

    def describe(self) -> str:
        extra = "".join(f", {k}={self.args[k]}" for k, d in (("stride", self.args["size"]), ("pad", 0))
                        if self.args[k] != d)
        return f"Pooling({self.args['size']}{extra})"
