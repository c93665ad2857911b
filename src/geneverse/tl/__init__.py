"""Tools: co-expression targets (and, in later releases, embeddings, queries and programs)."""

from __future__ import annotations

from ._coexpression import coexpression

__all__ = ["coexpression"]
