"""Gene capture factors per batch, estimated in clusters shared by batches, and counts rescaled by them.

Each batch scales every gene by its own capture efficiency (and every cell by its depth). Within a
cluster of similar cells found in several batches, the gene's mean differs between batches by
that factor. The model, on size-normalised counts (each cell's counts x median total / its total):

    expected sum of gene g over the cells of cluster k in batch b = n_kb * m_kg * f_bg

with ``m_kg`` the cluster's level and ``f_bg`` the batch's capture of the gene. Both are fitted by
alternating Poisson maximum-likelihood updates over the clusters that hold at least ``min_cells``
cells of two or more batches (a batch counts in a cluster when its share there is at least
``share`` of its share overall, so that a type found in one batch only does not pass for a shared
one). ``prior`` pseudo-counts shrink the factors of genes with few counts towards 1. The factors'
weighted geometric mean over batches is 1 (or the reference batch's are 1).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._chunks import CellChunks, _to_csr64, is_dask_array, row_totals, scale_rows

#: Pseudo-counts (in size-normalised counts) added to the observed and expected sums of a gene in a batch.
#: Chosen in probes on the planted batches of ``benchmarks/batch.py`` among 1-50: 1-5 amplified the noise of rare genes
#: (15-NN accuracy ratio down to 0.88), 50 left more of the strong capture effects (mixing 0.76).
CAPTURE_PRIOR = 20.0
#: A batch counts in a cluster when its share of the cluster's cells is at least this fraction of its overall share.
CAPTURE_SHARE = 0.5
#: Cells of a batch a cluster needs for that batch to count in it.
CAPTURE_MIN_CELLS = 10
#: Alternating updates of the levels and the factors.
CAPTURE_ITERATIONS = 10


def capture_factors(
    chunks: CellChunks,
    batch_codes: np.ndarray,
    n_batches: int,
    cluster_codes: np.ndarray,
    n_clusters: int,
    *,
    prior: float = CAPTURE_PRIOR,
    share: float = CAPTURE_SHARE,
    min_cells: int = CAPTURE_MIN_CELLS,
    iterations: int = CAPTURE_ITERATIONS,
    reference: int | None = None,
) -> tuple[np.ndarray, int]:
    """Capture factors (batches x genes) and the number of shared clusters they were estimated in.

    Parameters
    ----------
    chunks
        Cells x genes counts, streamed (rows in the order of the codes).
    batch_codes, cluster_codes
        Per cell, its batch (0..n_batches-1) and cluster (0..n_clusters-1; -1 leaves the cell out).
    n_batches, n_clusters
        How many.
    prior, share, min_cells, iterations
        See the module constants.
    reference
        A batch whose factors are 1 (the others relative to it); default: weighted geometric mean 1.

    Returns
    -------
    The factors (all 1 when no cluster is shared), and the number of shared clusters.
    """
    totals = chunks.map_concat(lambda chunk: row_totals(chunk)[:, None]).ravel()
    target = float(np.median(totals[totals > 0])) if (totals > 0).any() else 1.0
    size_factors = target / np.where(totals > 0, totals, 1.0)  # to size-normalised counts
    groups = np.where(cluster_codes >= 0, cluster_codes * n_batches + batch_codes, -1)
    sums = np.zeros((n_clusters * n_batches, chunks.n_genes))
    start = 0
    for chunk in chunks:
        stop = start + chunk.shape[0]
        rows = groups[start:stop]
        keep = np.flatnonzero(rows >= 0)
        indicator = sp.csr_matrix(
            (np.ones(len(keep)), (rows[keep], keep)), shape=(n_clusters * n_batches, chunk.shape[0])
        )
        sums += np.asarray((indicator @ scale_rows(chunk, size_factors[start:stop])).toarray())
        start = stop
    observed = sums.reshape(n_clusters, n_batches, -1)
    cells = np.bincount(groups[groups >= 0], minlength=n_clusters * n_batches).reshape(n_clusters, n_batches)
    overall = cells.sum(axis=0) / max(cells.sum(), 1)
    counts_in = (cells >= min_cells) & (cells >= share * cells.sum(axis=1, keepdims=True) * overall[None, :])
    shared = counts_in.sum(axis=1) >= 2
    factors = np.ones((n_batches, chunks.n_genes))
    if not shared.any():
        return factors, 0
    n = np.where(counts_in[shared], cells[shared], 0).astype(np.float64)  # clusters x batches
    observed = observed[shared] * (n[:, :, None] > 0)
    weight = n.sum(axis=0)[:, None]
    for _ in range(iterations):
        level = observed.sum(axis=1) / np.maximum(np.einsum("kb,bg->kg", n, factors), 1e-12)  # clusters x genes
        expected = n.T @ level  # batches x genes, at factor 1
        factors = (observed.sum(axis=0) + prior) / (expected + prior)
        if reference is None:
            factors /= np.exp((weight * np.log(factors)).sum(axis=0, keepdims=True) / max(weight.sum(), 1e-12))
        else:
            factors /= factors[reference]
    return factors, int(shared.sum())


class RowScaled:
    """A cells x genes matrix read in row slices, each cell's counts divided by its batch's capture factors.

    For :class:`~geneverse._core._chunks.CellChunks`: the counts are never copied whole; each chunk
    is scaled as it is read.
    """

    def __init__(self, X: object, batch_codes: np.ndarray, factors: np.ndarray) -> None:
        # row slices of CSC/COO are slow: one conversion, as CellChunks does
        self.X = sp.csr_matrix(X) if sp.issparse(X) and not isinstance(X, sp.csr_matrix | sp.csr_array) else X
        self.batch_codes = np.asarray(batch_codes)
        self.scale = 1.0 / np.asarray(factors, dtype=np.float64)
        self.shape = X.shape

    def __getitem__(self, rows: slice) -> sp.csr_matrix:
        block = self.X[rows]
        if is_dask_array(block):
            block = block.compute()
        chunk = _to_csr64(block)
        codes = self.batch_codes[rows]
        chunk.data = chunk.data * self.scale[np.repeat(codes, np.diff(chunk.indptr)), chunk.indices]
        return chunk
