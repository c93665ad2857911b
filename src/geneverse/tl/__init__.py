"""Tools: co-expression targets, gene embeddings and queries on them."""

from __future__ import annotations

from ._coexpression import coexpression
from ._embed import embed
from ._queries import analogy, similar, similar_pairs

__all__ = ["analogy", "coexpression", "embed", "similar", "similar_pairs"]
