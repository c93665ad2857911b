"""Evaluate embeddings: gene-set membership from gene vectors, cell labels from cell vectors.

Used by ``benchmarks/embeddings.py`` and ``benchmarks/quality.py``; every function takes an AnnData
and compares several ``varm``/``obsm`` keys on the same genes, cells and folds.
"""

from __future__ import annotations

from ._cells import batch_mixing, cell_scores, knn_accuracy
from ._genes import gene_set_auroc, read_gmt

__all__ = ["batch_mixing", "cell_scores", "gene_set_auroc", "knn_accuracy", "read_gmt"]
