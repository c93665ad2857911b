"""Graph-aware co-expression: each gene in a cell against every gene around it.

``S[i, j]`` is the Pearson correlation over cells between gene i's expression in a cell and gene
j's aggregate over that cell's graph neighbours (``aggr="mean"``: the weighted mean, rows of the
graph normalised to sum 1; ``"sum"``: the weighted sum). It is not symmetric: ``S[i, j]`` is "i here,
j around", ``S[j, i]`` the reverse.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._chunks import CellChunks
from ._gram import Gram, pearson_from_gram

AGGREGATIONS = ("mean", "sum")


def check_graph(graph: object, n_cells: int) -> sp.csr_matrix:
    """Validate a cells x cells graph: shape, finite non-negative weights; self-loops dropped."""
    if not (sp.issparse(graph) or isinstance(graph, np.ndarray)):
        raise TypeError(f"graph must be a scipy sparse or numpy cells x cells matrix, got {type(graph).__name__}.")
    matrix = sp.csr_matrix(graph, dtype=np.float64)
    if matrix.shape != (n_cells, n_cells):
        raise ValueError(
            f"graph has shape {matrix.shape} but the data has {n_cells} cells; it must be cells x cells "
            "(e.g. obsp['spatial_connectivities'] from squidpy.gr.spatial_neighbors on the same AnnData)."
        )
    if not np.all(np.isfinite(matrix.data)):
        raise ValueError("graph has NaN or infinite weights; fix or drop those edges.")
    if matrix.nnz and matrix.data.min() < 0:
        raise ValueError("graph has negative weights; neighbour aggregates need non-negative weights.")
    matrix.setdiag(0)
    matrix.eliminate_zeros()
    return matrix


def neighbour_operator(graph: sp.csr_matrix, aggr: str, include_self: bool) -> tuple[sp.csr_matrix, np.ndarray]:
    """The cells x cells operator that maps expression to neighbour aggregates, and the isolated cells.

    ``include_self`` adds each cell to its own neighbourhood with weight 1. Cells with no neighbour
    (empty rows) have no aggregate and are left out of the correlation.
    """
    if aggr not in AGGREGATIONS:
        raise ValueError(f"Unknown aggr {aggr!r}; use one of {AGGREGATIONS}.")
    operator = graph + sp.identity(graph.shape[0], format="csr") if include_self else graph.copy()
    degree = np.asarray(operator.sum(axis=1)).ravel()
    isolated = degree == 0
    if aggr == "mean":
        operator = sp.diags(np.where(isolated, 0.0, 1.0 / np.where(isolated, 1.0, degree))) @ operator
    return sp.csr_matrix(operator), isolated


def graph_cross_correlation(
    chunks: CellChunks, operator: sp.csr_matrix, isolated: np.ndarray, symmetrize: bool, progress=None
) -> np.ndarray:
    """Genes x genes correlation of own expression against neighbour aggregates, over non-isolated cells.

    Neighbour aggregates need the neighbours' rows, so the selected genes are held in memory as
    CSR; the products run over chunks of cells: ``Y = operator[rows] @ X`` and ``X[rows].T @ Y``.
    """
    expression = sp.vstack(list(chunks), format="csr") if chunks.n_chunks > 1 else next(iter(chunks))
    keep = ~isolated
    n_genes = chunks.n_genes
    cross = np.zeros((n_genes, n_genes))
    sums = np.zeros(n_genes)
    around_sums = np.zeros(n_genes)
    squares = np.zeros(n_genes)
    around_squares = np.zeros(n_genes)
    starts = range(0, chunks.n_cells, chunks.chunk_size)
    for start in progress(starts, total=len(starts)) if progress else starts:
        rows = np.arange(start, min(start + chunks.chunk_size, chunks.n_cells))
        rows = rows[keep[rows]]
        own = expression[rows]
        around = operator[rows] @ expression
        cross += (own.T @ around).toarray()
        sums += np.asarray(own.sum(axis=0)).ravel()
        around_sums += np.asarray(around.sum(axis=0)).ravel()
        squares += np.asarray(own.multiply(own).sum(axis=0)).ravel()
        around_squares += np.asarray(around.multiply(around).sum(axis=0)).ravel()
    # Pearson from the joint Gram of [own, around]: only the cross block is needed.
    n = int(keep.sum())
    joint = np.zeros((2 * n_genes, 2 * n_genes))
    joint[:n_genes, n_genes:] = cross
    joint[n_genes:, :n_genes] = cross.T
    joint[np.arange(n_genes), np.arange(n_genes)] = squares
    joint[np.arange(n_genes, 2 * n_genes), np.arange(n_genes, 2 * n_genes)] = around_squares
    correlation, _ = pearson_from_gram(Gram(joint, np.concatenate([sums, around_sums]), n))
    result = correlation[:n_genes, n_genes:]
    return (result + result.T) / 2 if symmetrize else result
