"""specc lsp against a real LSP client (pytest-lsp): diagnostics, hover, completion, definition, formatting."""
from __future__ import annotations

import sys

import pytest
from helpers import ROOT

pytest.importorskip("pygls", reason="the language server needs the lsp extra: pip install -e '.[lsp]'")
pytest_lsp = pytest.importorskip("pytest_lsp", reason="the client tests need pytest-lsp (in the test extra)")

from lsprotocol import types as t  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

TWO_ERRORS = "input 784\nAfine(50) -> ReLU -> Affine(10)\n  -> Softmax(1)\n"
GOOD = "block Dense(n) = Affine(n) -> ReLU\ninput 784\nDense(50) -> Affine(10) -> SoftmaxWithLoss\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "specc", "lsp"]))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(t.InitializeParams(capabilities=t.ClientCapabilities(),
                                                           root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def _open(client: LanguageClient, name: str, text: str) -> str:
    uri = (ROOT / name).as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(t.TextDocumentItem(uri, "specc", 1, text)))
    await client.wait_for_notification(t.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


@pytest.mark.asyncio
async def test_two_errors_arrive_with_their_ranges(client: LanguageClient):
    uri = await _open(client, "two_errors.net", TWO_ERRORS)
    found = sorted(client.diagnostics[uri], key=lambda d: (d.range.start.line, d.range.start.character))
    assert [(d.code, d.severity) for d in found] == [("unknown-layer", t.DiagnosticSeverity.Error)] * 2
    assert [(d.range.start, d.range.end) for d in found] == [
        (t.Position(1, 0), t.Position(1, 5)),  # Afine, on line 2 (0-based 1), columns 0-4
        (t.Position(2, 5), t.Position(2, 12)),  # Softmax
    ]
    assert "did you mean 'Affine'?" in found[0].message


@pytest.mark.asyncio
async def test_hover_shows_the_shapes_of_affine_10(client: LanguageClient):
    uri = await _open(client, "good.net", GOOD)
    hover = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(2, 15)))
    assert hover is not None and isinstance(hover.contents, t.MarkupContent)
    text = hover.contents.value
    assert "**Affine(50, 10)**" in text and "input `(N, 50)` -> output `(N, 10)`" in text
    assert "510 parameters, 1,000 FLOPs per sample" in text and "Fully connected layer" in text
    arg = await client.text_document_hover_async(t.HoverParams(t.TextDocumentIdentifier(uri), t.Position(2, 20)))
    assert arg is not None and "**out** of Affine" in arg.contents.value and "default: required" in arg.contents.value


@pytest.mark.asyncio
async def test_completion_of_aff_is_affine(client: LanguageClient):
    uri = await _open(client, "typing.net", "input 784\nAff")
    result = await client.text_document_completion_async(
        t.CompletionParams(t.TextDocumentIdentifier(uri), t.Position(1, 3)))
    labels = [i.label for i in (result.items if isinstance(result, t.CompletionList) else result or [])]
    assert labels[0] == "Affine"


@pytest.mark.asyncio
async def test_completion_of_block_and_argument_names(client: LanguageClient):
    uri = await _open(client, "blocks.net", "block Dense(n) = Affine(n) -> ReLU\ninput 784\nDe")
    result = await client.text_document_completion_async(
        t.CompletionParams(t.TextDocumentIdentifier(uri), t.Position(2, 2)))
    assert isinstance(result, t.CompletionList) and "Dense" in [i.label for i in result.items]
    uri = await _open(client, "args.net", "input 1x28x28\nConvolution(30, ")
    result = await client.text_document_completion_async(
        t.CompletionParams(t.TextDocumentIdentifier(uri), t.Position(1, 16)))
    assert isinstance(result, t.CompletionList) and "kernel=" in [i.label for i in result.items]


@pytest.mark.asyncio
async def test_definition_of_a_block_and_formatting(client: LanguageClient):
    uri = await _open(client, "good.net", GOOD)
    where = await client.text_document_definition_async(
        t.DefinitionParams(t.TextDocumentIdentifier(uri), t.Position(2, 1)))
    assert isinstance(where, t.Location) and where.range == t.Range(t.Position(0, 6), t.Position(0, 11))
    uri = await _open(client, "messy.net", "input 784\nAffine(10)->SoftmaxWithLoss")
    edits = await client.text_document_formatting_async(
        t.DocumentFormattingParams(t.TextDocumentIdentifier(uri), t.FormattingOptions(2, True)))
    assert edits is not None and [e.new_text for e in edits] == ["input 784\nAffine(10) -> SoftmaxWithLoss\n"]
