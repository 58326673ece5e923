"""specc: a declarative model-spec compiler for neural networks written as .net layer pipelines."""
from specc.errors import DataError, Diagnostic, FileError, RunError, SpeccError, SpecError, UsageError
from specc.source import Span

__version__ = "0.1.0"

from specc.api import check_file, check_source, check_text, compile, generated_code, ir_document, load, read, summary  # noqa: E402
from specc.bookparams import import_book_params  # noqa: E402
from specc.check import CheckedLayer, CheckedNetwork  # noqa: E402
from specc.network import Network, Parameter  # noqa: E402
from specc.summary import Summary  # noqa: E402

__all__ = [
    "__version__", "check_file", "check_source", "check_text", "compile", "generated_code", "ir_document", "load",
    "read", "summary", "Network", "Parameter", "import_book_params",
    "CheckedLayer", "CheckedNetwork", "Summary",
    "DataError", "Diagnostic", "FileError", "RunError", "Span", "SpeccError", "SpecError", "UsageError",
]
