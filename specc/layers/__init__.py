"""The layer registry: every layer type by its DSL name, and the book's spellings as aliases."""
from __future__ import annotations

from specc.layers.base import Arg, Layer, Shape, ShapeError, fmt_shape, foreign_key

REGISTRY: dict[str, type[Layer]] = {}
ALIASES: dict[str, str] = {}

# Importing the modules registers their layers; the order is the order `specc schema` lists them.
from specc.layers import affine, activations, losses, batchnorm, dropout, conv, pooling, flatten  # noqa: E402,F401,I001  (order matters)


def lookup(name: str) -> type[Layer] | None:
    """The layer type called `name` (exactly, or by an alias), or None."""
    return REGISTRY.get(ALIASES.get(name, name))


def foreign_hint(name: str) -> str | None:
    """The hint for a name another framework uses (`CrossEntropyLoss`, `Dense`, `Conv2d`), or None."""
    key = foreign_key(name)
    for cls in REGISTRY.values():
        for foreign, hint in cls.foreign_names.items():
            if foreign_key(foreign) == key:
                return hint
    return None


def names() -> list[str]:
    """Every spelling a user may write, canonical names first."""
    return [*REGISTRY, *ALIASES]


__all__ = ["REGISTRY", "ALIASES", "Arg", "Layer", "Shape", "ShapeError", "fmt_shape", "foreign_hint", "lookup",
           "names"]
