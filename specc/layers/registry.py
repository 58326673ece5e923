"""The layer registry: every layer type by its DSL name, the book's spellings as aliases, and the
names other frameworks use; `discover` imports every layer module of the package once."""
from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from specc.layers.base import Layer

REGISTRY: dict[str, type[Layer]] = {}
ALIASES: dict[str, str] = {}


def registered(cls: type[Layer]) -> type[Layer]:
    """Class decorator: add a layer type to the registry under its name and aliases."""
    for key in (cls.name, *cls.aliases):
        if key in REGISTRY or key in ALIASES:
            raise RuntimeError(f"layer name {key!r} registered twice")
    REGISTRY[cls.name] = cls
    for alias in cls.aliases:
        ALIASES[alias] = cls.name
    return cls


def foreign_key(name: str) -> str:
    """How foreign names are compared: LeakyReLU, leaky_relu and LEAKYRELU are one name."""
    return name.replace("_", "").lower()


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


# The package's modules that declare no layers; every other module of it is a layer family.
_SUPPORT = {"args", "base", "conv_winograd", "expression", "registry", "windows"}


def discover() -> None:
    """Import every layer module of specc.layers (in name order), which registers its layers:
    a new layer is a class in a module of the package, and nothing else lists it."""
    import specc.layers as package
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name not in _SUPPORT:
            importlib.import_module(f"{package.__name__}.{info.name}")
