"""`specc lsp`: the Language Server (pygls, the `lsp` extra) over specc.tools.editor and specc fmt."""
from __future__ import annotations

from lsprotocol import types as t
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from specc import __version__
from specc.errors import Diagnostic, SpeccError
from specc.source import Source
from specc.tools import editor, fmt

server = LanguageServer("specc", __version__)
_analyses: dict[str, editor.Analysis] = {}

_KINDS = {"layer": t.CompletionItemKind.Class, "block": t.CompletionItemKind.Function,
          "argument": t.CompletionItemKind.Property, "setting": t.CompletionItemKind.Field}


def _range(text: str, span) -> t.Range:
    (a, b), (c, d) = editor.lsp_range(text, span)
    return t.Range(t.Position(a, b), t.Position(c, d))


def _diagnostic(uri: str, text: str, d: Diagnostic) -> t.Diagnostic:
    message = d.message + (f"\nhelp: {d.hint}" if d.hint else "")
    related = [t.DiagnosticRelatedInformation(t.Location(uri, _range(text, n.span)), n.message)
               for n in d.notes if n.span is not None]
    return t.Diagnostic(_range(text, d.span), message,
                        t.DiagnosticSeverity.Error if d.is_error else t.DiagnosticSeverity.Warning,
                        code=d.code, source="specc", related_information=related or None)


def _analysis(ls: LanguageServer, uri: str) -> editor.Analysis:
    doc = ls.workspace.get_text_document(uri)
    known = _analyses.get(uri)
    if known is None or known.source.text != doc.source:
        known = _analyses[uri] = editor.analyze(to_fs_path(uri) or uri, doc.source)
    return known


def _publish(ls: LanguageServer, uri: str) -> None:
    a = _analysis(ls, uri)
    ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(
        uri, [_diagnostic(uri, a.source.text, d) for d in a.diagnostics]))


@server.feature(t.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: t.DidOpenTextDocumentParams) -> None:
    _publish(ls, params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LanguageServer, params: t.DidChangeTextDocumentParams) -> None:
    _publish(ls, params.text_document.uri)


@server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: LanguageServer, params: t.DidCloseTextDocumentParams) -> None:
    _analyses.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(t.PublishDiagnosticsParams(params.text_document.uri, []))


def _where(ls: LanguageServer, params) -> tuple[editor.Analysis, int, int]:
    a = _analysis(ls, params.text_document.uri)
    line, col = editor.position(a.source.text, params.position.line, params.position.character)
    return a, line, col


@server.feature(t.TEXT_DOCUMENT_HOVER)
def hover(ls: LanguageServer, params: t.HoverParams) -> t.Hover | None:
    a, line, col = _where(ls, params)
    text = editor.hover(a, line, col)
    return t.Hover(t.MarkupContent(t.MarkupKind.Markdown, text)) if text else None


@server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=["(", ",", ">"]))
def completion(ls: LanguageServer, params: t.CompletionParams) -> t.CompletionList:
    a, line, col = _where(ls, params)
    items = [t.CompletionItem(c.label, kind=_KINDS[c.kind], detail=c.detail or None)
             for c in editor.completions(a, line, col)]
    return t.CompletionList(is_incomplete=False, items=items)


@server.feature(t.TEXT_DOCUMENT_DEFINITION)
def definition(ls: LanguageServer, params: t.DefinitionParams) -> t.Location | None:
    a, line, col = _where(ls, params)
    span = editor.definition(a, line, col)
    return t.Location(params.text_document.uri, _range(a.source.text, span)) if span else None


@server.feature(t.TEXT_DOCUMENT_FORMATTING)
def formatting(ls: LanguageServer, params: t.DocumentFormattingParams) -> list[t.TextEdit] | None:
    a = _analysis(ls, params.text_document.uri)
    try:
        formatted = fmt.format_source(Source(a.source.name, a.source.text))
    except SpeccError:
        return None  # a document with errors is not formatted; its diagnostics say why
    if formatted == a.source.text:
        return []
    lines = a.source.text.split("\n")
    end = t.Position(len(lines) - 1, len(lines[-1].encode("utf-16-le")) // 2)
    return [t.TextEdit(t.Range(t.Position(0, 0), end), formatted)]


def serve() -> int:
    server.start_io()
    return 0
