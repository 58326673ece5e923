"""What `specc explain` shows: the definition, the chapter's steps in words, the backward pass node by
node with real values (specc.graph.view's tables) and the agreement with the hand-written backward."""
from __future__ import annotations

from typing import Any

from rich.text import Text

from specc.expr.explain import SAMPLE_X, Explanation
from specc.graph import view as graph_view

# What each node does to the gradient it receives, in the chapter's words.
_WORDS = {
    "add": "`+` passes the gradient on unchanged",
    "sub": "`−` passes it on to a and flips its sign for b",
    "mul": "`×` multiplies it by the other input (flipped)",
    "div": "`/` multiplies it by −a/b² (−y² when a is 1)",
    "neg": "`×(−1)` flips its sign",
    "exp": "`exp` multiplies it by exp(a), its own output",
    "max": "`max` lets it through where a > c, else 0 (the mask)",
    "min": "`min` lets it through where a < c, else 0",
    "tanh": "`tanh` multiplies it by 1 − y²",
    "sigmoid": "`σ` multiplies it by y(1 − y)",
    "matmul": "`@` sends g·Bᵀ to A and Aᵀ·g to B",
    "identity": "`=` passes it on",
}
# The backward the chapter arrives at, as the built-in computes it.
SIMPLIFIED = {
    "ReLU": "dx = dy where x > 0, else 0",
    "LeakyReLU": "dx = dy where x > 0, else alpha·dy",
    "Sigmoid": "dx = dy·y²·exp(−x) = dy·y(1 − y)",
    "Tanh": "dx = dy·(1 − y²)",
    "Affine": "dX = dY·Wᵀ, dW = Xᵀ·dY, db = the sum of dY over the batch",
}


def renderables(ex: Explanation, precise: bool = False) -> list[Any]:
    d, src = ex.definition, ex.source
    lines = [src.line(n) for n in range(d.span.line, d.span.end_line + 1)]
    head = Text(f"{ex.name}, as the prelude defines it ({src.name}:{d.span.line}):\n", style="bold")
    head.append("\n".join("  " + line.split("#")[0].rstrip() for line in lines))
    sample = Text(f"\nat the sample x = {graph_view.show(SAMPLE_X)} (a batch of 2), backward from y "
                  "with upstream gradient ones:")
    steps = Text()
    for k, step in enumerate(ex.evaluation.steps, 1):
        words = _WORDS.get(step.node.op, f"`{step.node.op}`")
        steps.append(f"  {k}. {graph_view.label(step.node, src)}: {words}\n")
    result = Text(f"so {SIMPLIFIED.get(ex.name, '')}: the built-in {ex.name}'s hand-written backward gives "
                  f"the same gradients (largest difference {ex.agreement:.1e})",
                  style="bold green" if ex.agreement <= 1e-12 else "bold red")
    return [head, sample, steps, graph_view.backward_table(ex.evaluation, src, precise),
            graph_view.gradients_table(ex.evaluation, ex.checks, precise), result]
