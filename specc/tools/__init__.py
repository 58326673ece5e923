"""Tools over the language: formatter, linter, shape lens, editor support (language server, highlighting)."""
