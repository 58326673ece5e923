"""Stage 4: shape inference and the network-level rules (one loss, last), on a typed IR network."""
from __future__ import annotations

from dataclasses import dataclass, field

from specc import layers
from specc.errors import Diagnostic, Label, SpecError
from specc.ir import CallSpec, NetworkSpec, Placeholder
from specc.layers.base import Layer, Shape, ShapeError, size
from specc.layers.expression import layer_type
from specc.text import batch_shape


@dataclass(frozen=True)
class CheckedLayer:
    """One layer of a checked network: its spec, its typed rules, and its numbered parameters."""

    index: int
    spec: CallSpec
    layer: Layer
    params: dict[str, Shape]  # "W1" -> (784, 50)
    buffers: dict[str, Shape]  # "running_mean1" -> (50,)
    names: dict[str, str]  # the layer's own names of its parameters and buffers -> the network's: "W" -> "W1"

    @property
    def in_shape(self) -> Shape:
        return self.layer.in_shape

    @property
    def out_shape(self) -> Shape:
        return self.layer.out_shape


@dataclass(frozen=True)
class CheckedNetwork:
    network: NetworkSpec
    input_shape: Shape
    layers: tuple[CheckedLayer, ...]
    # What is allowed but likely not meant; located and in source order when it comes from specc.api.
    warnings: tuple[Diagnostic, ...] = field(default=())

    @property
    def parameter_count(self) -> int:
        return sum(size(s) for layer in self.layers for s in layer.params.values())

    @property
    def loss(self) -> CheckedLayer:
        return self.layers[-1]


def kind(spec: CallSpec) -> type[Layer] | None:
    """The layer type of a call: a built-in one by name, or the one its expression defines."""
    if spec.expression is not None:
        return layer_type(spec.type, spec.expression, tuple(spec.args))
    return layers.lookup(spec.type)


def _producer(index: int) -> tuple:
    return ("layers", index - 1) if index > 0 else ("input",)


def check(net: NetworkSpec) -> CheckedNetwork:
    """Infer every shape and apply the network rules; raise SpecError with every problem found.

    A placeholder (a layer whose mistake is already reported) has an unknown output shape:
    inference resumes at the next layer that fixes its own shape (an Affine with its input size).
    An unknown layer may have been meant as the loss, so with one the loss rules are left alone.
    """
    errors: list[Diagnostic] = []
    checked: list[CheckedLayer] = []
    if not net.layers:
        raise SpecError([Diagnostic("the network has no layers", None, "empty", path=("layers",))])
    shape = _first_shape(net, errors)
    counters: dict[tuple[str, ...], int] = {}
    used: set[str] = set()
    for i, spec in enumerate(net.layers):
        if isinstance(spec, Placeholder):
            shape = None
            continue
        cls = kind(spec)
        if cls is None:  # (validation refuses unknown types; a placeholder stands for them)
            shape = None
            continue
        if shape is None:
            shape = cls.implied_input(spec.args)
            if shape is None:
                continue
        try:
            layer = cls(spec.args, shape)
        except ShapeError as e:
            # The argument at fault, where it was written; one left to its default is located
            # at the layer (in a .json IR file every argument is written, and found there).
            path = ("layers", i, "args", e.arg) if e.arg is not None else ("layers", i)
            got = "declared" if i == 0 else "produces"
            if e.span is not None:  # inside the definition of an expression layer; the use is a note
                errors.append(Diagnostic(
                    e.message, e.span, "shape", e.wants or "", e.hint,
                    (*e.notes, Label(None, f"{spec.type} is used here, on {batch_shape(shape)}", ("layers", i)),
                     *_expanded_from(spec)), path=("layers", i)))
                shape = None
                continue
            errors.append(Diagnostic(
                e.message, None, "shape", e.wants or f"receives {batch_shape(shape)}", e.hint,
                (Label(None, f"{got} {batch_shape(shape)}", _producer(i)), *_expanded_from(spec)), path=path))
            shape = None
            continue
        names = _numbered(layer, counters, used)
        params = {names[base]: shape for base, shape in layer.param_shapes().items()}
        buffers = {names[base]: shape for base, shape in layer.buffer_shapes().items()}
        checked.append(CheckedLayer(i, spec, layer, params, buffers, names))
        shape = layer.out_shape

    errors += _loss_rules(net)
    errors += check_train(net)
    warnings = _argument_warnings(net)
    if errors:
        raise SpecError(errors + warnings)
    # With layers set aside (they failed validation) nothing may have been inferred at all.
    input_shape = checked[0].in_shape if checked else tuple(net.input_shape or ())
    return CheckedNetwork(net, input_shape, tuple(checked), tuple(warnings))


def _first_shape(net: NetworkSpec, errors: list[Diagnostic]) -> Shape | None:
    """The declared input, or the input the first layer states itself (Affine(784, 50))."""
    first = net.layers[0]
    if net.input_shape is not None:
        return net.input_shape
    if isinstance(first, Placeholder):
        return None
    cls = kind(first)
    shape = cls.implied_input(first.args) if cls is not None else None
    if shape is None:
        errors.append(Diagnostic(
            f"cannot tell the input shape of the first layer, {first.type}", None, "no-input",
            "needs an input shape",
            hint="declare it before the chain: `input 784` for vectors, `input 1x28x28` for images",
            path=("layers", 0)))
    return shape


def _argument_warnings(net: NetworkSpec) -> list[Diagnostic]:
    """What each layer declares suspicious in its (valid) arguments, at the argument."""
    out = []
    for i, spec in enumerate(net.layers):
        if isinstance(spec, Placeholder) or (cls := kind(spec)) is None:
            continue
        for w in cls.lint(spec.args):
            out.append(Diagnostic(w.message, None, w.code, "", w.hint, path=("layers", i, "args", w.arg),
                                  severity="warning"))
    return out


def _expanded_from(spec: CallSpec) -> tuple[Label, ...]:
    """Where a layer that comes from a block or a repetition was expanded, for errors inside blocks."""
    if not spec.origin or spec.origin[0].call is None:
        return ()
    blocks = " > ".join(o.block for o in spec.origin if o.block)
    copies = [f"copy {o.repeat} of {o.of}" for o in spec.origin if o.repeat]
    return (Label(spec.origin[0].call, "expanded from here: " + ", ".join(([blocks] if blocks else []) + copies)),)


def _numbered(layer: Layer, counters: dict[tuple[str, ...], int], used: set[str]) -> dict[str, str]:
    """W1, b1 for the first Affine or Convolution, gamma1, beta1 for the first BatchNorm, ...:
    each of the layer's own names (W, b, running_mean) -> its name in the network. Layers with the same
    names count together; a number whose names another group took already is skipped (a layer written
    as an expression with a W of its own after an Affine gets W2, and its p1 after another's p11), so
    that no two layers share a name (they would share, and overwrite, one array)."""
    bases = (*layer.param_shapes(), *layer.buffer_shapes())
    if not bases:
        return {}
    group = type(layer).param_names or tuple(layer.param_shapes())
    n = counters.get(group, 0) + 1
    while any(f"{base}{n}" in used for base in bases):
        n += 1
    counters[group] = n
    names = {base: f"{base}{n}" for base in bases}
    used.update(names.values())
    return names


def _loss_rules(net: NetworkSpec) -> list[Diagnostic]:
    kinds = [kind(c) if isinstance(c, CallSpec) else layers.lookup(c.type) if c.type else None for c in net.layers]
    losses = [i for i, cls in enumerate(kinds) if cls is not None and cls.is_loss]
    last = len(net.layers) - 1
    if not losses and any(cls is None for cls in kinds):
        return []  # a layer of unknown type (reported already) may be the loss that was meant
    if not losses:
        return [Diagnostic("the network has no loss layer", None, "no-loss", "the chain ends here",
                           "end the chain with `-> SoftmaxWithLoss` (classes) or `-> MeanSquaredError`",
                           path=("layers", last))]
    out = []
    for i in losses:
        if i != last:
            out.append(Diagnostic(
                f"the loss layer {net.layers[i].type} must be the last layer", None, "loss-not-last",
                "a loss here", "a network has exactly one loss, at the end of the chain",
                (Label(None, f"followed by {_kind(net.layers[i + 1])}", ("layers", i + 1)),),
                path=("layers", i)))
    return out


def _kind(c: CallSpec | Placeholder) -> str:
    return c.type or (c.written if isinstance(c, Placeholder) and c.written else "a layer")


def check_train(net: NetworkSpec) -> list[Diagnostic]:
    """The rules of the train section alone (they hold whatever the layers are)."""
    if net.train is None:
        return []
    s = net.train.settings
    out = []
    if "epochs" in s and "iters" in s:
        out.append(Diagnostic("set either epochs or iters, not both", None, "conflicting-settings",
                              "", "iters counts training steps; epochs counts passes over the data",
                              (Label(None, "epochs set here", ("train", "epochs")),), path=("train", "iters")))
    optimizer = s.get("optimizer")
    if "lr" in s and isinstance(optimizer, CallSpec) and "lr" in optimizer.arg_spans:
        out.append(Diagnostic("the learning rate is set twice", None, "conflicting-settings", "",
                              "keep one: `lr = ...` or the optimizer's `lr=` argument",
                              (Label(None, "also set here", ("train", "optimizer", "args", "lr")),),
                              path=("train", "lr")))
    return out
