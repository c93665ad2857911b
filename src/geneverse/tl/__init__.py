"""Tools: co-expression targets, gene embeddings, queries, programs and cell embeddings."""

from __future__ import annotations

from ._cells import cell_embed
from ._coexpression import coexpression
from ._embed import embed
from ._programs import programs, score_programs
from ._queries import analogy, similar, similar_pairs

__all__ = [
    "analogy",
    "cell_embed",
    "coexpression",
    "embed",
    "programs",
    "score_programs",
    "similar",
    "similar_pairs",
]
