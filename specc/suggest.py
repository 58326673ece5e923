"""'Did you mean' hints: the names closest to a misspelt one."""
from __future__ import annotations

import difflib
from typing import Iterable, Mapping


def did_you_mean(word: str, candidates: Iterable[str], shown: Mapping[str, str] | None = None) -> str | None:
    """A ranked 'did you mean' hint: same spelling in another case first, then the closest names.

    `shown` maps a spelling (an alias) to the name to suggest in its place.
    """
    shown = shown or {}
    candidates = list(dict.fromkeys(candidates))
    same_case = [c for c in candidates if c.lower() == word.lower()]
    lowered = {c.lower(): c for c in reversed(candidates)}
    # the same word in another case is what was meant: nothing else is worth listing beside it
    close = [] if same_case else \
        [lowered[m] for m in difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.6)]
    ranked = list(dict.fromkeys(shown.get(c, c) for c in same_case + close))[:3]
    if not ranked:
        return None
    if len(ranked) == 1:
        return f"did you mean '{ranked[0]}'?"
    return "did you mean " + ", ".join(f"'{r}'" for r in ranked[:-1]) + f" or '{ranked[-1]}'?"
