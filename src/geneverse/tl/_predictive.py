"""``gv.tl.predictive_genes``: the genes whose vectors point like a group's cells."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._core._annotate import group_directions, top_per_column
from .._core._search import valid_rows
from .._data import cell_vectors, gene_names, gene_vectors
from .._docs import shared_docs
from .._keys import Key
from .._utils import check_positive_int, resolve_modality
from ._annotate import group_labels, same_space


@shared_docs
def predictive_genes(
    adata: Any,
    groupby: str,
    n: int = 10,
    *,
    vectors_key: str = Key.GENE_VECTORS,
    cells_key: str = Key.CELL_VECTORS,
    inverse: bool = False,
    gene_symbols: str | None = None,
    mod: str | None = None,
) -> pd.DataFrame:
    """Per group of cells, the genes whose vectors best match the group's mean cell vector.

    A group's direction is the mean of its cells' unit vectors (:func:`cell_embed`); a gene's score
    is the cosine between its vector and that direction. ``inverse=True`` gives the genes pointing
    most away from the group, as genevector's ``get_inverse_predictive_genes``. Genes without a
    vector are left out. Nothing is written to ``adata``.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with gene vectors in ``varm[vectors_key]`` and cell vectors
        in ``obsm[cells_key]``.
    groupby
        ``obs`` column of the groups (e.g. ``"leiden"`` or a cell-type column).
    n
        Genes per group.
    {doc_vectors_key}
    cells_key
        ``obsm`` key of the cell vectors (:func:`cell_embed` of the same gene vectors).
    inverse
        The ``n`` lowest-scoring genes per group instead of the highest.
    {doc_gene_symbols}
    {doc_mod}

    Returns
    -------
    Tidy DataFrame with one row per group and gene: ``group``, ``rank`` (1 = best), ``gene``,
    ``score`` (cosine), ordered by group and rank.
    """
    modality = resolve_modality(adata, mod)
    check_positive_int("n", n)
    labels = group_labels(modality, groupby)
    vectors = gene_vectors(modality, vectors_key)
    cells = cell_vectors(modality, cells_key, finite=True)
    same_space(cells, vectors, cells_key, vectors_key)
    usable = np.flatnonzero(valid_rows(vectors))
    names = np.asarray(gene_names(modality, gene_symbols), dtype=object)[usable]
    groups, directions = group_directions(cells, labels)
    order, scores = top_per_column(vectors[usable], directions, min(int(n), len(usable)), lowest=bool(inverse))
    k = order.shape[0]
    return pd.DataFrame(
        {
            "group": np.repeat(groups, k),
            "rank": np.tile(np.arange(1, k + 1), len(groups)),
            "gene": names[order.T.ravel()],
            "score": scores.T.ravel(),
        }
    )
