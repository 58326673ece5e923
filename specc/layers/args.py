"""Layer (and optimizer) arguments: their declaration, and the JSON Schema fragments they share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

REQUIRED = object()  # marks an argument without a default


# Argument schemas shared by several layers. Upper bounds keep absurd values out early.
MAX_SIZE = 2**31 - 1


POSITIVE_INT = {"type": "integer", "minimum": 1, "maximum": MAX_SIZE}


NONNEGATIVE_INT = {"type": "integer", "minimum": 0, "maximum": MAX_SIZE}


INIT = {"anyOf": [{"enum": ["auto", "he", "xavier"]},
                  {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6}]}


INIT_EXPECTS = "'auto', 'he', 'xavier' or a positive number (the standard deviation)"


@dataclass(frozen=True)
class Arg:
    """One argument of a layer: its name, what it accepts, its default and what it means."""

    name: str
    schema: dict[str, Any]
    expects: str  # for messages: "expected {expects}, received ..."
    default: Any = REQUIRED  # a value, REQUIRED, or a function of the other arguments
    doc: str = ""
    nullable: bool = False  # None means "inferred" (e.g. Affine's `in`)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def default_for(self, args: Mapping[str, Any]) -> Any:
        return self.default(args) if callable(self.default) else self.default


@dataclass(frozen=True)
class ArgWarning:
    """An argument value that is allowed but very likely not what was meant; reported as a warning."""

    arg: str
    message: str
    hint: str | None = None
    code: str = "suspicious-arg"
