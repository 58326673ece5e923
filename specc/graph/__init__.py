"""Computational graphs: named inputs with values and named values defined by expressions,
evaluated forward, differentiated backward (`specc grad`) and drawn as the book draws them
(`specc draw`)."""
