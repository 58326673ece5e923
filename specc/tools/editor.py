"""What an editor asks of a .net document (diagnostics, hover, completion, definition), without any protocol.

specc.tools.lsp puts these on the Language Server Protocol. Positions here are specc's: 1-based lines
and columns in characters, end column exclusive; `lsp_range`/`position` convert to and from LSP's
0-based lines and UTF-16 columns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from specc import layers
from specc import syntax as s
from specc.check import CheckedLayer, CheckedNetwork
from specc.errors import Diagnostic, SpeccError
from specc.layers.args import REQUIRED, Arg
from specc.parse import parse
from specc.source import Source, Span
from specc.text import batch_shape
from specc.tools.annotate import outer_span
from specc.tools.lint import lint_source
from specc.training.section import SETTINGS


@dataclass
class Analysis:
    """One version of a document: its diagnostics, and what was understood of it."""

    source: Source
    diagnostics: tuple[Diagnostic, ...] = ()
    module: s.Module | None = None  # None while it does not parse
    checked: CheckedNetwork | None = None  # None while it has errors
    blocks: dict[str, s.BlockDef] = field(default_factory=dict)


def analyze(name: str, text: str) -> Analysis:
    source = Source(name, text)
    a = Analysis(source)
    try:
        checked = lint_source(source)
        a.diagnostics = checked.warnings
        a.checked = checked if isinstance(checked, CheckedNetwork) else None  # a graph has no layers to hover
    except SpeccError as e:
        a.diagnostics = e.diagnostics
    try:
        a.module = parse(source)
        a.blocks = {b.name: b for b in a.module.statements if isinstance(b, s.BlockDef)}
    except SpeccError:
        pass
    return a


# --- positions ---------------------------------------------------------------------------

def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def lsp_range(text: str, span: Span | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """((line, character), (line, character)), 0-based, characters in UTF-16 code units."""
    if span is None:
        return (0, 0), (0, 0)
    lines = text.split("\n")

    def point(line: int, col: int) -> tuple[int, int]:
        raw = lines[line - 1] if 1 <= line <= len(lines) else ""
        return line - 1, _utf16(raw[:col - 1])

    return point(span.line, span.col), point(span.end_line, span.end_col)


def position(text: str, line: int, character: int) -> tuple[int, int]:
    """specc's (line, col) of an LSP position."""
    lines = text.split("\n")
    raw = lines[line] if 0 <= line < len(lines) else ""
    units = 0
    for i, ch in enumerate(raw):
        if units >= character:
            return line + 1, i + 1
        units += _utf16(ch)
    return line + 1, len(raw) + 1


def _at(span: Span, line: int, col: int) -> bool:
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


# --- hover ---------------------------------------------------------------------------------

def _calls(item: s.Item | s.Value) -> list[s.Call]:
    if isinstance(item, s.Chain):
        return [c for i in item.items for c in _calls(i)]
    if isinstance(item, s.Repeat):
        return _calls(item.body)
    return [item] if isinstance(item, s.Call) else []


def _all_calls(module: s.Module) -> list[s.Call]:
    out = []
    for st in module.statements:
        if isinstance(st, s.NetworkDef):
            out += _calls(st.chain)
        elif isinstance(st, s.BlockDef):
            out += _calls(st.body)
    return out


def _layers_of(checked: CheckedNetwork, call: s.Call) -> list[CheckedLayer]:
    """The layers a call in the source became: itself (once per use, in a block), or a block's layers."""
    return [cl for cl in checked.layers
            if cl.spec.span == call.span or any(o.call == call.span for o in cl.spec.origin)]


def hover(a: Analysis, line: int, col: int) -> str | None:
    """Markdown for what is at (line, col): a layer or block call, or one of its arguments."""
    if a.module is None:
        return None
    for call in _all_calls(a.module):
        if not _at(call.span, line, col):
            continue
        cls = layers.lookup(call.name)
        for arg in call.args:
            if cls is not None and (arg.key_span if arg.key else arg.span) and \
                    _at(arg.key_span if arg.key else arg.span, line, col):
                return _argument_hover(a, cls, call, arg)
        return _call_hover(a, call, cls)
    return None


def _call_hover(a: Analysis, call: s.Call, cls: type[layers.Layer] | None) -> str | None:
    block = a.blocks.get(call.name)
    if cls is None and block is None:
        return None
    found = _layers_of(a.checked, call) if a.checked is not None else []
    if found:
        first, last = found[0], found[-1]
        params = sum(cl.layer.parameter_count() for cl in found)
        flops = sum(cl.layer.flops() for cl in found)
        title = first.layer.describe() if cls is not None else f"{call.name}: {len(found)} layers"
        uses = len({outer_span(cl.spec) for cl in found})
        head = [f"**{title}**", "", f"input `{batch_shape(first.in_shape)}` -> output `{batch_shape(last.out_shape)}`",
                "", f"{params:,} parameters, {flops:,} FLOPs per sample" + (f" ({uses} uses)" if uses > 1 else "")]
    else:
        head = [f"**{call.name}**", "", "(shapes once the file has no errors)"]
    if cls is not None:
        doc = [cls.doc, "", "arguments: " + ", ".join(_signature_text(x) for x in cls.signature)] \
            if cls.signature else [cls.doc]
    else:
        assert block is not None
        doc = [f"block defined at line {block.span.line}"]
    return "\n".join(head + ["", *doc]).rstrip()


def _default_text(arg: Arg) -> str:
    if arg.default is REQUIRED:
        return "required"
    if arg.nullable and arg.default is None:
        return "inferred"
    if callable(arg.default):
        return "computed from the other arguments"
    return f"`{arg.default}`"


def _signature_text(arg: Arg) -> str:
    return f"`{arg.name}`" + ("" if arg.required else f" ({_default_text(arg)})")


def _argument_hover(a: Analysis, cls: type[layers.Layer], call: s.Call, arg: s.Arg) -> str | None:
    name = arg.key
    if name is None:  # positional: the name it binds to, as lowering binds it
        positional = [x for x in call.args if x.key is None]
        names = cls.positional_names(len(positional)) or ()
        index = positional.index(arg)
        name = names[index] if index < len(names) else None
    spec = next((x for x in cls.signature if x.name == name), None)
    if spec is None:
        return None
    return f"**{name}** of {cls.name}: {spec.doc or spec.expects}\n\nexpects {spec.expects}; " \
           f"default: {_default_text(spec)}"


# --- completion ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Completion:
    label: str
    kind: str  # "layer", "block", "argument", "setting"
    detail: str = ""


_OPEN_CALL = re.compile(r"([A-Za-z_]\w*)\s*\($")


def completions(a: Analysis, line: int, col: int) -> list[Completion]:
    """What may be written at (line, col): argument names inside a layer's parentheses, setting names
    inside `train { }`, else layer and block names."""
    text = a.source.text
    lines = text.split("\n")
    before = "\n".join(lines[:line - 1] + [lines[line - 1][:col - 1] if line <= len(lines) else ""])
    before = re.sub(r"#[^\n]*", "", before)
    depth, brace = 0, before.rfind("{") > before.rfind("}")
    for i in range(len(before) - 1, -1, -1):
        ch = before[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            if depth == 0:
                m = _OPEN_CALL.search(before[:i + 1])
                cls = layers.lookup(m.group(1)) if m else None
                if cls is None:
                    return []
                return [Completion(f"{x.name}=", "argument", x.doc) for x in cls.signature]
            depth -= 1
    if brace:
        return [Completion(f"{name} = ", "setting", getattr(spec, "expects", "")) for name, spec in SETTINGS.items()]
    out = [Completion(name, "layer", cls.doc) for name, cls in layers.REGISTRY.items()]
    out += [Completion(alias, "layer", f"the book's spelling of {target}") for alias, target in layers.ALIASES.items()]
    names = a.blocks or dict.fromkeys(re.findall(r"^\s*block\s+([A-Za-z_]\w*)", text, re.M))
    out += [Completion(name, "block", "a block of this file") for name in names]
    word = re.search(r"[A-Za-z_]\w*$", before)  # what is typed so far: `Aff` offers Affine first
    if word:
        out = [c for c in out if c.label.lower().startswith(word.group(0).lower())] or out
    return out


def definition(a: Analysis, line: int, col: int) -> Span | None:
    """Where the block called at (line, col) is defined."""
    if a.module is None:
        return None
    for call in _all_calls(a.module):
        if _at(call.name_span, line, col) and call.name in a.blocks:
            return a.blocks[call.name].name_span
    return None

