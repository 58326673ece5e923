"""The book's view of a network's arrays: `net.params` as a checked mapping, and `net.layers` as
the ordered mapping `Affine1, Relu1, ...` of layer objects with `W`, `b`, `dW`, `db` (views of the
network's own arrays), as a learner's code from *Deep Learning from Scratch* expects them."""
from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from specc.errors import DataError, Diagnostic, UsageError
from specc.text import shape_text

if TYPE_CHECKING:
    from specc.check import CheckedLayer
    from specc.network import Network


def assign(net: "Network", name: str, target: np.ndarray, value: Any) -> None:
    """Write `value` into a parameter or state array in place, in the network's dtype; a value of
    another shape, or not numeric, is a DataError naming the array and both shapes."""
    if value is target:
        return  # `net.params["W1"] -= lr * g` modifies the array itself, then assigns it back
    array = np.asarray(value)
    owner = _owner(net, name)
    where = owner.spec.span if owner is not None else None
    if array.dtype.kind not in "biuf":
        raise DataError([Diagnostic(f"'{name}' must hold numbers, but the value holds {array.dtype} values",
                                    where, "bad-param", f"declares {name}")], net.source)
    if array.shape != target.shape:
        what = owner.layer.describe() if owner is not None else "the network"
        raise DataError([Diagnostic(
            f"'{name}' of {what} is {shape_text(target.shape)}, but the value assigned is {shape_text(array.shape)}",
            where, "bad-param", f"declares {name}",
            "assign an array of the same shape; the layer's arguments fix it")], net.source)
    np.copyto(target, array, casting="unsafe")


def _owner(net: "Network", name: str) -> "CheckedLayer | None":
    for c in net.checked.layers:
        if name in c.names.values():
            return c
    return None


class ParamDict(MutableMapping):
    """`net.params`: the live parameter arrays by name. Assigning an array copies it into the
    parameter (converted to the network's dtype), so the generated code keeps its buffers."""

    def __init__(self, net: "Network"):
        self._net = net

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._net._arrays[name]
        except KeyError:
            raise KeyError(f"{name!r}: the network's parameters are {', '.join(self._net._arrays)}") from None

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self._net._arrays:
            raise DataError([Diagnostic(f"the network has no parameter '{name}'", None, "bad-param",
                                        hint=f"its parameters are {', '.join(self._net._arrays)}")],
                            self._net.source)
        assign(self._net, name, self._net._arrays[name], value)

    def __delitem__(self, name: str) -> None:
        raise UsageError([Diagnostic(f"parameter '{name}' cannot be removed: the spec declares it",
                                     None, "bad-param")])

    def __iter__(self) -> Iterator[str]:
        return iter(self._net._arrays)

    def __len__(self) -> int:
        return len(self._net._arrays)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: array({shape_text(v.shape)})" for k, v in self._net._arrays.items()) + "}"


class BookLayer:
    """One layer as the book's code sees it: its parameters and state as attributes (`W`, `b`,
    `gamma`, `running_mean`, ...) and their gradients (`dW`, `db`, ...), all live views."""

    def __init__(self, net: "Network", checked: "CheckedLayer", key: str):
        object.__setattr__(self, "_net", net)
        object.__setattr__(self, "_checked", checked)
        object.__setattr__(self, "key", key)

    def _array(self, attr: str) -> tuple[str, np.ndarray] | None:
        c, net = self._checked, self._net
        if attr in c.names:
            name = c.names[attr]
            return name, (net._arrays[name] if name in net._arrays else net.state[name])
        if attr.startswith("d") and attr[1:] in c.layer.param_shapes():
            name = c.names[attr[1:]]
            return name, net.grads[name]
        return None

    def __getattr__(self, attr: str) -> Any:
        found = self._array(attr)
        if found is None:
            raise AttributeError(f"{self.key} ({self._checked.layer.describe()}) has no attribute {attr!r}; "
                                 f"it has {', '.join(self._attributes()) or 'no arrays'}")
        return found[1]

    def __setattr__(self, attr: str, value: Any) -> None:
        found = self._array(attr)
        if found is None:
            raise AttributeError(f"{self.key} has no array {attr!r} to set; it has "
                                 f"{', '.join(self._attributes()) or 'none'}")
        assign(self._net, found[0], found[1], value)

    def _attributes(self) -> list[str]:
        c = self._checked
        return [*c.names, *(f"d{base}" for base in c.layer.param_shapes())]

    @property
    def spec(self) -> "CheckedLayer":
        return self._checked

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *self._attributes()]

    def __repr__(self) -> str:
        span = self._checked.spec.span
        return f"<{self.key}: {self._checked.layer.describe()}{f', line {span.line}' if span else ''}>"


class BookLayers(Mapping):
    """`net.layers`: the layers before the loss, in order, keyed as the book keys them (Affine1,
    Relu1, Conv1, Pool1, BatchNorm1, Dropout1, ...); `layers[i]` also takes a position, as the
    book's DeepConvNet indexes its list. The loss layer is `net.lastLayer`."""

    def __init__(self, net: "Network"):
        counts: dict[str, int] = {}
        self._items: dict[str, BookLayer] = {}
        for c in net.checked.layers[:-1]:
            prefix = type(c.layer).book_name or c.layer.name
            counts[prefix] = counts.get(prefix, 0) + 1
            key = f"{prefix}{counts[prefix]}"
            self._items[key] = BookLayer(net, c, key)
        loss = net.checked.loss
        self.last = BookLayer(net, loss, loss.layer.name)

    def __getitem__(self, key: str | int) -> BookLayer:
        if isinstance(key, int):
            return list(self._items.values())[key]
        try:
            return self._items[key]
        except KeyError:
            raise KeyError(f"{key!r}: the layers are {', '.join(self._items)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._items.items()) + "}"
