"""How each ONNX operator of a chain becomes a specc layer: one function per operator (OPS), on the
translation state (specc.interop.onnx_chain), each refusing what specc cannot express."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from specc.interop.onnx_chain import Chain, batched, dims, label
from specc.layers.base import size


# --- one function per operator: (chain, node, position in the chain) ------------------------------
def _gemm(ch: Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    if a.get("transA", 0):
        raise ch.refuse(node, "transA=1 transposes the input batch; specc's Affine reads (N, in)")
    if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
        raise ch.refuse(node, f"alpha={a.get('alpha', 1.0):g}, beta={a.get('beta', 1.0):g}; specc's Affine is "
                              "x W + b (alpha = beta = 1)")
    w = ch.weights(node, 1, "weight B")
    if w.ndim != 2:
        raise ch.refuse(node, f"its weight B is {dims(w.shape)}, not a matrix")
    _dense(ch, node, w.T if a.get("transB", 0) else w, ch.const(node, 2, "bias C", required=False))


def _matmul(ch: Chain, node: Any, i: int) -> None:
    w = ch.weights(node, 1, "weight (the second input)")
    if w.ndim != 2:
        raise ch.refuse(node, f"its weight is {dims(w.shape)}, not a matrix")
    _dense(ch, node, w, None)
    ch.layers[-1].open_bias = True


def _add(ch: Chain, node: Any, i: int) -> None:
    last = ch.layers[-1] if ch.layers else None
    if last is None or not last.open_bias:
        raise ch.refuse(node, "specc reads an Add only as the bias right after a MatMul",
                        "a residual or other Add joins values: that is not a chain of layers")
    out = last.arrays["W"].shape[1]
    bias = ch.const(node, 1, "bias (the second input)")
    assert bias is not None
    last.open_bias = False
    try:
        last.arrays["b"] = np.broadcast_to(bias, (1, out)).reshape(out).astype(np.float32)
    except ValueError:
        raise ch.refuse(node, f"its bias is {dims(bias.shape)}; the MatMul before it has {out} outputs") from None


def _dense(ch: Chain, node: Any, w: np.ndarray, bias: np.ndarray | None) -> None:
    """An Affine layer from a (in, out) weight; a channels-last flatten before it is folded into its rows."""
    if len(ch.shape) != 1:
        raise ch.refuse(node, f"it reads a value of shape {batched(ch.shape)}; flatten it first (Flatten)")
    n_in, out = w.shape
    if n_in != ch.shape[0]:
        raise ch.refuse(node, f"its weight is {dims(w.shape)} (in x out), but {ch.shape[0]} values reach it")
    if ch.channels_last is not None:
        c, h, wd = ch.channels_last
        # the rows are in (H, W, C) order; specc flattens (C, H, W): reorder them
        w = w.reshape(h, wd, c, out).transpose(2, 0, 1, 3).reshape(n_in, out)
        ch.notes.append(f"{label(node)} read a channels-last (H, W, C) flatten; its weight rows are reordered "
                        "to specc's (C, H, W) order")
        ch.shape, ch.channels_last = (c, h, wd), None
    b = np.zeros(out, np.float32) if bias is None else bias
    try:
        b = np.broadcast_to(b, (1, out)).reshape(out).astype(np.float32)
    except ValueError:
        raise ch.refuse(node, f"its bias is {dims(b.shape)}; it has {out} outputs") from None
    if ch.layers and ch.layers[-1].kind == "Flatten":  # Affine flattens an image itself, in the same order
        ch.shape = ch.layers.pop().in_shape
    ch.add(node, "Affine", {"out": int(out)}, {"W": w.astype(np.float32), "b": b})


def _conv(ch: Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    c = ch.image(node)[0]
    if a.get("group", 1) != 1:
        raise ch.refuse(node, f"group={a['group']}; specc's Convolution connects every input channel (group=1)")
    w = ch.weights(node, 1, "weight W")
    if w.ndim != 4:
        raise ch.refuse(node, f"its weight is {dims(w.shape)}; a 2-D convolution's is (filters, C, kH, kW)")
    k, s, p = ch.window(node, a, tuple(a.get("kernel_shape", w.shape[2:])), "kernel")
    if w.shape[1] != c:
        raise ch.refuse(node, f"its weight is {dims(w.shape)} for {w.shape[1]} channels, but {c} reach it")
    bias = ch.const(node, 2, "bias B", required=False)
    b = np.zeros(w.shape[0], np.float32) if bias is None else bias.reshape(-1).astype(np.float32)
    ch.add(node, "Convolution", {"filters": int(w.shape[0]), "kernel": k, "stride": s, "pad": p},
           {"W": w, "b": b})


def _pool(kind: str) -> Callable[[Chain, Any, int], None]:
    def translate(ch: Chain, node: Any, i: int) -> None:
        a = ch.attrs(node)
        if len(node.output) > 1 and node.output[1]:
            raise ch.refuse(node, "its Indices output is used; specc's Pooling has one output")
        k, s, p = ch.window(node, a, tuple(a.get("kernel_shape", ())), "kernel_shape")
        if kind == "AvgPooling" and p and not a.get("count_include_pad", 0):
            raise ch.refuse(node, "count_include_pad=0 divides edge windows by their cells inside the image; "
                                  "specc's AvgPooling counts padded cells as zeros (count_include_pad=1)")
        ch.add(node, kind, {"size": k, "stride": s, "pad": p})
    return translate


def _batchnorm(ch: Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    if a.get("training_mode", 0):
        raise ch.refuse(node, "training_mode=1 normalises with the batch's statistics; specc exports and imports "
                              "the inference form (running statistics)")
    if not a.get("spatial", 1):
        raise ch.refuse(node, "spatial=0 normalises every pixel apart; specc normalises per channel")
    if len(ch.shape) not in (1, 3):
        raise ch.refuse(node, f"it reads {batched(ch.shape)}; specc normalises (N, C) or (N, C, H, W)")
    features = (ch.shape[0],)
    arrays = {base: ch.weights(node, n, what, features).reshape(-1) for n, (base, what) in enumerate(
        (("gamma", "scale"), ("beta", "bias B"), ("running_mean", "mean"), ("running_var", "var")), 1)}
    args: dict[str, Any] = {}
    eps, momentum = _f32(a.get("epsilon", 1e-5)), _f32(a.get("momentum", 0.9))
    if eps != 1e-6:
        args["eps"] = eps
    if momentum != 0.9:
        args["momentum"] = momentum
    ch.add(node, "BatchNorm", args, arrays)


def _dropout(ch: Chain, node: Any, i: int) -> None:
    a = ch.attrs(node)
    ratio = a.get("ratio", 0.5)
    if ch.opset >= 12:
        given = ch.const(node, 1, "ratio", required=False)
        ratio = 0.5 if given is None else float(given)
        mode = ch.const(node, 2, "training_mode", required=False)
        if mode is not None and bool(mode):
            raise ch.refuse(node, "training_mode is true: it drops values at inference; specc's is the identity")
    ch.add(node, "Dropout", {"ratio": _f32(ratio)})


def _mul(ch: Chain, node: Any, i: int) -> None:
    """A Mul by 1 - ratio right after an (inverted, identity) Dropout is specc's Dropout(scale="test"),
    as specc exports it; any other Mul has no layer."""
    last = ch.layers[-1] if ch.layers else None
    value = ch.const(node, 1, "factor", required=False)
    if (last is not None and last.kind == "Dropout" and "scale" not in last.args and value is not None
            and value.size == 1 and abs(float(value.flat[0]) - (1 - last.args.get("ratio", 0.5))) < 1e-6):
        last.args["scale"] = "test"
        return
    raise ch.refuse(node, "a Mul has no specc layer, except by 1 - ratio right after a Dropout "
                          '(specc\'s Dropout(scale="test"))')


def _flatten(ch: Chain, node: Any, i: int) -> None:
    axis = ch.attrs(node).get("axis", 1)
    if axis not in (1, -len(ch.shape)):
        raise ch.refuse(node, f"axis={axis} flattens across the batch; specc keeps one row per sample (axis=1)")
    _to_vector(ch, node, i)


def _reshape(ch: Chain, node: Any, i: int) -> None:
    target = ch.const(node, 1, "shape")
    assert target is not None
    n = size(ch.channels_last or ch.shape)
    t = [int(v) for v in np.asarray(target).reshape(-1)]
    if len(t) != 2 or t[0] not in (0, -1) or t[1] not in (-1, n) or t == [-1, -1]:
        raise ch.refuse(node, f"it reshapes {batched(ch.shape)} to {t}; specc reshapes only to (N, {n}) "
                              "(a flatten, written [-1, size] or [0, -1])",
                        "a reshape that sets the batch size, or makes images out of vectors, has no specc form")
    _to_vector(ch, node, i)


def _to_vector(ch: Chain, node: Any, i: int) -> None:
    if ch.channels_last is not None:  # (H, W, C) flattened: the dense layer next reorders its rows
        if _next_op(ch, i) not in ("Gemm", "MatMul"):
            raise ch.refuse(node, "it flattens a channels-last (Transpose) image, and no Gemm or MatMul follows; "
                                  "specc flattens in (C, H, W) order",
                            "specc can take a Keras-style flatten only into a dense layer")
        ch.shape = (size(ch.channels_last),)
        return
    if len(ch.shape) == 1:
        return  # (N, size) already
    ch.add(node, "Flatten")


def _transpose(ch: Chain, node: Any, i: int) -> None:
    perm = list(ch.attrs(node).get("perm", []))
    if perm == [0, 2, 3, 1] and len(ch.shape) == 3 and _next_op(ch, i) in ("Flatten", "Reshape"):
        ch.channels_last = ch.shape
        return
    raise ch.refuse(node, f"perm={perm} on {batched(ch.shape)}; specc keeps images channels-first",
                    "specc reads a Transpose only as perm=[0, 2, 3, 1] right before a Flatten or Reshape into a "
                    "dense layer (the Keras layout), where it is folded into the weights")


def _simple(kind: str) -> Callable[[Chain, Any, int], None]:
    def translate(ch: Chain, node: Any, i: int) -> None:
        ch.add(node, kind)
    return translate


def _leaky(ch: Chain, node: Any, i: int) -> None:
    alpha = _f32(ch.attrs(node).get("alpha", 0.01))
    if not 0 <= alpha <= 1:
        raise ch.refuse(node, f"alpha={alpha:g}; specc's LeakyReLU takes 0 <= alpha <= 1")
    ch.add(node, "LeakyReLU", {} if alpha == 0.01 else {"alpha": alpha})


def _softmax(ch: Chain, node: Any, i: int) -> None:
    axis = ch.attrs(node).get("axis", 1 if ch.opset < 13 else -1)
    if len(ch.shape) != 1 or axis not in (1, -1):
        raise ch.refuse(node, f"softmax over axis {axis} of {batched(ch.shape)}; specc's is over the classes "
                              "of (N, classes)")
    ch.add(node, "SoftmaxWithLoss")


def _identity(ch: Chain, node: Any, i: int) -> None:
    pass


OPS: dict[str, Callable[[Chain, Any, int], None]] = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Conv": _conv,
    "MaxPool": _pool("Pooling"), "AveragePool": _pool("AvgPooling"),
    "BatchNormalization": _batchnorm, "Dropout": _dropout, "Mul": _mul, "Flatten": _flatten, "Reshape": _reshape,
    "Transpose": _transpose, "Relu": _simple("ReLU"), "LeakyRelu": _leaky, "Sigmoid": _simple("Sigmoid"),
    "Tanh": _simple("Tanh"), "Softmax": _softmax, "Identity": _identity,
}


def _next_op(ch: Chain, i: int) -> str | None:
    return ch.chain[i + 1].op_type if i + 1 < len(ch.chain) else None


def _f32(value: Any) -> float:
    """A float32 attribute as the decimal a person writes: 1e-05, not 9.999999747378752e-06."""
    return float(str(np.float32(value)))
