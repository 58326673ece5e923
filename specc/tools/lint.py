"""`specc lint`: what the book teaches and practice shows goes wrong, as warnings on a checked network.

Each rule is a function of the checked network (shapes known) and the syntax tree; it returns
warnings (Diagnostic, severity "warning") with a span, a code and a hint, the same kind that check
reports. `# specc: ignore[code]` on the line of a warning, or alone on the line above it, silences it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Callable, Iterable

from specc import api, layers
from specc import syntax as s
from specc.check import CheckedLayer, CheckedNetwork
from specc.errors import Diagnostic, Label
from specc.graph.check import CheckedGraph
from specc.ir import CallSpec
from specc.layers.windows import padding_only
from specc.parse import parse
from specc.source import Source, Span
from specc.tools.text import tokens
from specc.training.data import NAMED, SAMPLE
from specc.training.optimizers import OPTIMIZERS


@dataclass(frozen=True)
class _Context:
    checked: CheckedNetwork
    module: s.Module

    @property
    def layers(self) -> tuple[CheckedLayer, ...]:
        return self.checked.layers

    def pairs(self) -> Iterable[tuple[CheckedLayer, CheckedLayer]]:
        return zip(self.layers, self.layers[1:])


def _warn(message: str, span: Span | None, code: str, label: str, hint: str,
          notes: tuple[Label, ...] = ()) -> Diagnostic:
    return Diagnostic(message, span, code, label, hint, notes, severity="warning")


def _is(cl: CheckedLayer, name: str) -> bool:
    return type(cl.layer) is layers.lookup(name)


# --- the rules ------------------------------------------------------------------------------

def _dropout_before_loss(c: _Context) -> Iterable[Diagnostic]:
    if len(c.layers) >= 2 and c.layers[-1].layer.is_loss and _is(c.layers[-2], "Dropout"):
        loss = c.layers[-1]
        yield _warn(f"Dropout right before the loss layer {loss.spec.type}", c.layers[-2].spec.span,
                    "dropout-before-loss", "drops scores, not features",
                    "Dropout belongs between hidden layers; remove this one, or move it before the last Affine",
                    (Label(loss.spec.span, "the loss"),))


def _init_mismatch(c: _Context) -> Iterable[Diagnostic]:
    for weights, act in c.pairs():
        init = weights.spec.args.get("init")
        span = weights.spec.arg_spans.get("init")
        want = type(act.layer).preferred_init
        if span is None or not act.layer.activation or want is None:
            continue
        name = act.spec.type
        if init in ("he", "xavier") and init != want:
            why = ("He init is meant for ReLU; a Sigmoid or Tanh after it saturates" if init == "he" else
                   "Xavier init is meant for Sigmoid and Tanh; after it the activations of ReLU shrink layer by layer")
            yield _warn(f"init={init} before {name}: {why}", span, "init-mismatch", f"followed by {name}",
                        f"write init={want} (or leave init out: `auto` picks {want} before {name})")
        elif isinstance(init, (int, float)) and want == "he":
            he = math.sqrt(2 / weights.layer.fan_in())
            if init < he / 2:
                yield _warn(f"init={init:g} is a tiny standard deviation before {name}: the activations vanish layer "
                            "by layer (the book's weight-init chapter)", span, "init-mismatch",
                            f"He init would give {he:.3g}", "write init=he, or leave init out")


def _double_activation(c: _Context) -> Iterable[Diagnostic]:
    for a, b in c.pairs():
        if a.layer.activation and b.layer.activation:
            yield _warn(f"two activations in a row: {a.spec.type} then {b.spec.type}", b.spec.span,
                        "double-activation", "a second activation", "remove one of them",
                        (Label(a.spec.span, "the first"),))


def _batchnorm_on_input(c: _Context) -> Iterable[Diagnostic]:
    if c.layers and _is(c.layers[0], "BatchNorm") and c.checked.network.input_shape is not None:
        yield _warn("BatchNorm directly after the input normalises the raw data", c.layers[0].spec.span,
                    "batchnorm-on-input", "first layer",
                    "specc already scales pixels to [0, 1]; put BatchNorm after an Affine or Convolution, "
                    "before its activation")


def _unused_block(c: _Context) -> Iterable[Diagnostic]:
    blocks = {b.name: b for b in c.module.statements if isinstance(b, s.BlockDef)}
    used: set[str] = set()
    todo = [x.chain for x in c.module.statements if isinstance(x, s.NetworkDef)]
    while todo:
        for name in _called(todo.pop()):
            if name in blocks and name not in used:
                used.add(name)
                todo.append(blocks[name].body)
    for name, b in blocks.items():
        if name not in used:
            yield _warn(f"block '{name}' is defined but never used", b.name_span, "unused-block", "never used",
                        "use it in the network's chain, or remove it")


def _called(item: s.Item) -> set[str]:
    if isinstance(item, s.Chain):
        return {n for i in item.items for n in _called(i)}
    if isinstance(item, s.Repeat):
        return _called(item.body)
    return {item.name}


def _inferable_in(c: _Context) -> Iterable[Diagnostic]:
    for cl in c.layers:
        if cl.index == 0 and c.checked.network.input_shape is None:
            continue  # the first layer states the input of the network
        for arg in cl.layer.signature:
            span = cl.spec.arg_spans.get(arg.name)
            if arg.nullable and span is not None and cl.spec.args.get(arg.name) is not None:
                yield _warn(f"{cl.spec.type}'s `{arg.name}` can be inferred here", span, "inferable-in",
                            "specc knows this", f"leave `{arg.name}` out, as in `{_without(cl, arg.name)}`: "
                            "specc infers it from what reaches the layer")


def _without(cl: CheckedLayer, name: str) -> str:
    shown = [a for a in cl.layer.signature if a.name != name and a.name in cl.spec.arg_spans]
    args = [str(cl.spec.args[a.name]) if a.required else f"{a.name}={cl.spec.args[a.name]}" for a in shown]
    return f"{cl.spec.type}({', '.join(args)})"


# The rates that work for each optimizer, from the book's experiments and common practice: SGD and
# its momentum variants tolerate far larger steps than the adaptive methods, which scale them.
LEARNING_RATES = {"SGD": (1e-4, 1.0), "Momentum": (1e-4, 1.0), "Nesterov": (1e-4, 1.0), "AdaGrad": (1e-4, 1.0),
                  "RMSprop": (1e-5, 1e-2), "Adam": (1e-5, 1e-2)}


def _learning_rate(c: _Context) -> Iterable[Diagnostic]:
    train = c.checked.network.train
    if train is None:
        return
    optimizer = train.settings.get("optimizer")
    name = optimizer.type if isinstance(optimizer, CallSpec) else "SGD"
    if "lr" in train.settings:
        lr, span = train.settings["lr"], train.key_spans.get("lr")
    elif isinstance(optimizer, CallSpec) and "lr" in optimizer.arg_spans:
        lr, span = optimizer.args["lr"], optimizer.arg_spans["lr"]
    else:
        return
    if name not in LEARNING_RATES or not isinstance(lr, (int, float)):
        return
    low, high = LEARNING_RATES[name]
    if not low <= lr <= high:
        default = next(a.default for a in OPTIMIZERS[name].signature if a.name == "lr")
        what = "diverges or bounces" if lr > high else "barely moves"
        yield _warn(f"a learning rate of {lr:g} is outside the usual range for {name} ({low:g} to {high:g})", span,
                    "lr-range", f"training {what}", f"{name}'s default is {default:g}; try rates near it")


# Training samples of the data sets specc knows by name (the embedded sample is the default).
TRAINING_SAMPLES = {SAMPLE: 4_000, **{name: 60_000 for name in NAMED}}


def _params_dwarf_data(c: _Context) -> Iterable[Diagnostic]:
    net = c.checked.network
    data = net.train.settings.get("data") if net.train is not None else None
    samples = TRAINING_SAMPLES.get(data if isinstance(data, str) else SAMPLE)
    if data is not None and not isinstance(data, str) or samples is None:
        return  # a data file of its own: its size is known only by reading it
    total = c.checked.parameter_count
    if total <= 10 * samples or not c.layers:
        return
    span = (net.train.key_spans.get("data") if data is not None and net.train is not None else None) \
        or net.input_span or c.layers[0].spec.span
    biggest = max(c.layers, key=lambda cl: cl.layer.parameter_count())
    yield _warn(f"{total:,} parameters for {samples:,} training samples ({data or SAMPLE}): the network can learn "
                "its data by heart", span, "params-dwarf-data", "more than 10 parameters per sample",
                "train on more data (`data = mnist`: 60,000 samples), or a smaller network; weight decay and "
                "Dropout help (the book's overfitting chapter)",
                (Label(biggest.spec.span, f"{biggest.layer.describe()} holds "
                                          f"{biggest.layer.parameter_count():,}"),))


def _pool_discards(c: _Context) -> Iterable[Diagnostic]:
    for i, cl in enumerate(c.layers):
        if not (_is(cl, "Pooling") or _is(cl, "AvgPooling")):
            continue
        (_, h, w), (_, oh, ow) = cl.in_shape, cl.out_shape
        after = c.layers[i + 1] if i + 1 < len(c.layers) else None
        if oh * ow * 16 < h * w:
            yield _warn(f"{cl.spec.type} keeps {oh}x{ow} of a {h}x{w} image, {oh * ow / (h * w):.1%} of its "
                        "positions", cl.spec.span, "pool-discards", f"-> {oh}x{ow}",
                        "pool with a smaller window or stride: `Pooling(2)` halves each side")
        elif oh <= 2 and ow <= 2 and after is not None and _is(after, "Affine"):
            yield _warn(f"only {oh}x{ow} positions of the image reach {after.spec.type}", cl.spec.span,
                        "pool-discards", f"-> {oh}x{ow}",
                        "pool less before the Affine layer, so that where things are in the image still counts",
                        (Label(after.spec.span, "flattens what is left"),))


def _pad_beyond_window(c: _Context) -> Iterable[Diagnostic]:
    # max pooling with such a pad is an error (Pooling's shape rule): its blind windows have no maximum
    for cl in c.layers:
        conv = _is(cl, "Convolution")
        if not (conv or _is(cl, "AvgPooling")):
            continue
        window, what = (cl.layer.args["kernel"], "kernel") if conv else (cl.layer.args["size"], "window")
        pad, stride = cl.layer.args["pad"], cl.layer.args["stride"]
        (_, h, w), (_, oh, ow) = cl.in_shape, cl.out_shape
        rows, cols = padding_only(h, oh, window, stride, pad), padding_only(w, ow, window, stride, pad)
        if not rows and not cols:
            continue
        same = ("the bias alone, the same for every image (a BatchNorm after them divides a variance of zero by "
                "its eps); pad = (kernel - 1) / 2 keeps the image's size" if conv else
                "the padding's zeros, the same for every image; average pooling usually takes pad=0")
        yield _warn(f"{rows:,} of the {oh:,} rows and {cols:,} of the {ow:,} columns of {cl.spec.type}'s output "
                    f"see only padding: pad={pad} is as wide as the {window}x{window} {what}",
                    cl.spec.arg_spans.get("pad", cl.spec.span), "pad-beyond-window", f"pad {pad} >= {what} {window}",
                    f"their values are {same}")


def _bias_before_batchnorm(c: _Context) -> Iterable[Diagnostic]:
    for a, b in c.pairs():
        if (_is(a, "Affine") or _is(a, "Convolution")) and _is(b, "BatchNorm"):
            yield _warn(f"the bias of {a.spec.type} gets zero gradient: the BatchNorm after it subtracts the mean",
                        a.spec.span, "bias-before-batchnorm", "its b never moves",
                        "BatchNorm's beta does the bias's job; the bias only costs memory and time",
                        (Label(b.spec.span, "cancels it"),))


@dataclass(frozen=True)
class Rule:
    code: str
    what: str  # one line, for the README's table and `specc lint --rules`
    check: Callable[[_Context], Iterable[Diagnostic]]


RULES = (
    Rule("dropout-before-loss", "Dropout right before the loss layer", _dropout_before_loss),
    Rule("init-mismatch", "He init before Sigmoid/Tanh, Xavier or a tiny std (< half of He's) before ReLU",
         _init_mismatch),
    Rule("double-activation", "two activations in a row", _double_activation),
    Rule("batchnorm-on-input", "BatchNorm directly after the input", _batchnorm_on_input),
    Rule("unused-block", "a block defined and never used", _unused_block),
    Rule("inferable-in", "`Affine(in, out)` whose `in` specc infers anyway", _inferable_in),
    Rule("lr-range", "a learning rate outside its optimizer's usual range (SGD 1e-4..1, Adam 1e-5..1e-2)",
         _learning_rate),
    Rule("params-dwarf-data", "more than 10 parameters per training sample of the data set", _params_dwarf_data),
    Rule("pool-discards", "pooling that keeps < 1/16 of an image, or 2x2 or less before an Affine",
         _pool_discards),
    Rule("bias-before-batchnorm", "a bias that gets zero gradient (Affine or Convolution right before BatchNorm)",
         _bias_before_batchnorm),
    Rule("pad-beyond-window", "a Convolution or AvgPooling padded as wide as its window (borders see padding alone)",
         _pad_beyond_window),
)


def lint(checked: CheckedNetwork, module: s.Module) -> list[Diagnostic]:
    """Every rule's warnings on a checked network, each mistake once (a block is checked per call)."""
    context = _Context(checked, module)
    found: dict[tuple, Diagnostic] = {}
    for rule in RULES:
        for d in rule.check(context):
            found.setdefault((d.code, d.span, d.message), d)
    return list(found.values())


_IGNORE = re.compile(r"specc:\s*ignore\[([^\]]*)\]")


def silenced(source: Source) -> dict[int, set[str]]:
    """Line -> codes silenced there: by `# specc: ignore[a, b]` at its end, or alone on the line above."""
    out: dict[int, set[str]] = {}
    code_lines = {t.line for t in tokens(source.text) if t.type != "COMMENT"}
    for t in tokens(source.text):
        if t.type == "COMMENT":
            for m in _IGNORE.finditer(t.text):
                codes = {c.strip() for c in m.group(1).split(",") if c.strip()}
                out.setdefault(t.line, set()).update(codes)
                if t.line not in code_lines:
                    out.setdefault(t.line + 1, set()).update(codes)
    return out


def lint_source(source: Source) -> CheckedNetwork | CheckedGraph:
    """check_source, with the linter's warnings added to the network's own (in source order, silenced
    ones left out); SpecError, as check_source, for a spec with errors. A computational graph has
    its own check's warnings only (the rules are about networks)."""
    checked = api.check_any(source)
    found = list(checked.warnings)
    if isinstance(checked, CheckedNetwork) and not source.name.lower().endswith(".json"):
        found += lint(checked, parse(source))
    quiet = silenced(source) if not source.name.lower().endswith(".json") else {}
    kept = [d for d in found if d.span is None or d.code not in quiet.get(d.span.line, set())]
    kept.sort(key=lambda d: (d.span.line, d.span.col) if d.span else (0, 0))
    return replace(checked, warnings=tuple(kept))
