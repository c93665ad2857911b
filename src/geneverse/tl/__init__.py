"""Tools: co-expression targets, gene embeddings (trained or from text), queries, programs and cell embeddings."""

from __future__ import annotations

from ._annotate import annotate, read_markers
from ._batch import batch_correct
from ._cells import cell_embed
from ._coexpression import coexpression
from ._embed import embed
from ._network import gene_network
from ._predictive import predictive_genes
from ._programs import programs, score_programs
from ._queries import analogy, similar, similar_pairs
from ._text import text_embed

__all__ = [
    "analogy",
    "annotate",
    "batch_correct",
    "cell_embed",
    "coexpression",
    "embed",
    "gene_network",
    "predictive_genes",
    "programs",
    "read_markers",
    "score_programs",
    "similar",
    "similar_pairs",
    "text_embed",
]
