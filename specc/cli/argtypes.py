"""The command line's value types: what argparse turns a flag's text into, and the message when it cannot."""
from __future__ import annotations

import argparse

from specc.errors import SpeccError
from specc.memory import parse_size


def size(text: str) -> int:
    try:
        return parse_size(text)
    except SpeccError:
        raise argparse.ArgumentTypeError(f"not a memory size: {text} (write 512M, 2G or 1.5GiB)") from None


def _number(kind: type, low: float, high: float, what: str):
    """An argparse type: a number of `kind` from low to high (exclusive bounds where float)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}") from None
        if not low <= value <= high or (kind is float and value in (low, high)):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value
    return parse


positive = _number(int, 1, float("inf"), "a positive integer")


positive_float = _number(float, 0.0, float("inf"), "a positive number")


def non_negative_float(text: str) -> float:
    value = _number(float, -1.0, float("inf"), "a number of at least 0")(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, not {text}")
    return value


positive_workers = _number(int, 2, 1 << 20, "a number of workers of at least 2")


def link(text: str):
    from specc.scaling import Link

    gbit, _, latency = text.partition(":")
    try:
        link = Link(float(gbit), float(latency) if latency else 0.0)
    except ValueError:
        link = None
    if link is None or not link.gbit > 0 or not link.latency_us >= 0:
        raise argparse.ArgumentTypeError(f"not a link: {text} (write GBIT or GBIT:LATENCY_US, e.g. 10:25)")
    return link


def list_of(item):
    """An argparse type: a comma-separated list of `item`s."""
    def parse(text: str):
        return [item(part.strip()) for part in text.split(",") if part.strip()]
    return parse


seed = _number(int, 0, 2**32 - 1, f"a whole number from 0 to {2**32 - 1}")


fraction = _number(float, 0.0, 1.0, "a number between 0 and 1")
