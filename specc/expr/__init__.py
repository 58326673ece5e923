"""Layers written as expressions: `layer Swish = x * sigmoid(x)` in a .net file, lowered per use into the
IR (specc.expr.lower), derived by reverse mode over the expression's nodes (specc.expr.derive), run by
the generic layer specc.layers.expression.ExpressionLayer, and explained for the built-ins from the
prelude (specc.expr.explain)."""
