"""Read geneverse's results back out of an AnnData or MuData (as ``scanpy.get``).

Every tool, plot, query and the viewer read through these functions, so a result is found, checked
and explained (which call writes it) the same way everywhere.
"""

from __future__ import annotations

from .._data import cell_vectors, coexpression, expression, gene_names, gene_vectors, program_scores, programs, record

__all__ = [
    "cell_vectors",
    "coexpression",
    "expression",
    "gene_names",
    "gene_vectors",
    "program_scores",
    "programs",
    "record",
]
