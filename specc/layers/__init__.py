"""specc's layers: each module of this package declares a family of them (affine, activations,
conv, ...) and registers each by its DSL name; importing the package registers them all."""
from __future__ import annotations

from specc.layers.args import Arg
from specc.layers.base import Layer, Shape, ShapeError
from specc.layers.registry import ALIASES, REGISTRY, discover, foreign_hint, lookup, names

discover()

__all__ = ["REGISTRY", "ALIASES", "Arg", "Layer", "Shape", "ShapeError", "foreign_hint", "lookup", "names"]
