"""Binned mutual information between all gene pairs from sparse products of bin indicators.

The estimator is GeneVector's: each gene is discretised on its own (bin 0 = not expressed, bins
1..k = quantiles of its nonzero values, k = min(n_bins, distinct nonzero values)); the joint table
of a pair counts the cells where at least one of the two genes is expressed (cells where both are
zero are dropped; ``include_double_zeros=True`` keeps them, which gives the textbook plug-in MI);
MI is in bits.

No loop over pairs: with ``O`` the cells x (genes * n_bins) one-hot matrix of nonzero bins, the
Gram ``C = O.T @ O`` holds every joint count where both genes are expressed. The counts with one
gene at zero, all marginals and the total follow from ``C``'s row sums and the per-bin counts, so

    MI(a, b) * T = sum xlogx(C_ab) + Z_ab + Z_ba + xlogx(T) - h_a - h_b
                   - xlogx(nnz_b - both_ab) - xlogx(nnz_a - both_ab)

with ``xlogx(x) = x ln x``, ``both_ab`` the cells expressing both, ``T = nnz_a + nnz_b - both_ab``,
``h_a = sum_u xlogx(n_u)`` over a's bins and ``Z_ab = sum_u xlogx(n_u - R_ub)`` where ``R_ub`` is the
number of cells in bin ``u`` of gene a that express gene b. Writing
``Z_ab = h_a + sum over the nonzero R_ub of [xlogx(n_u - R_ub) - xlogx(n_u)]`` cancels ``h_a`` and
``h_b`` and leaves work proportional to the nonzeros of ``C``. ``C`` is computed block-row by
block-row (upper triangle only), accumulated over chunks of cells, so memory is O(block + genes²).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from itertools import pairwise

import numpy as np
import scipy.sparse as sp

from ._chunks import CellChunks, GeneValues, gene_values

LN2 = np.log(2.0)


def xlogx(x: np.ndarray) -> np.ndarray:
    """``x * ln(x)`` with ``0 ln 0 = 0``."""
    x = np.asarray(x, dtype=np.float64)
    return x * np.log(np.where(x > 0, x, 1.0))


def _numpy_lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear interpolation exactly as ``np.percentile(method='linear')`` rounds it."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def quantile_edges(values: GeneValues, n_bins: int) -> np.ndarray:
    """Inner quantile edges of every gene's nonzero values, padded with +inf.

    Equal to ``np.percentile(nonzero, np.linspace(0, 100, k + 1)[1:-1])`` per gene, with
    ``k = min(n_bins, distinct nonzero values)``, computed from the value counts of all genes at once.

    Returns
    -------
    ``(n_genes, n_bins - 1)`` float64 array; unused slots hold ``inf`` so ``edges <= v`` counts bins.
    """
    n_genes = values.n_genes
    edges = np.full((n_genes, max(n_bins - 1, 0)), np.inf)
    n_distinct = np.diff(values.ptr)
    k = np.minimum(n_bins, n_distinct)
    nnz = values.nnz
    cum = np.cumsum(values.counts)
    gene_start = np.concatenate([[0], cum])[values.ptr[:-1]]
    for n_q in range(2, n_bins + 1):
        genes = np.flatnonzero(k == n_q)
        if not len(genes):
            continue
        quantiles = np.true_divide(np.linspace(0, 100, n_q + 1)[1:-1], 100)
        virtual = (nnz[genes, None] - 1) * quantiles[None, :]
        previous = np.floor(virtual)
        gamma = virtual - previous
        previous = previous.astype(np.int64)
        following = np.minimum(previous + 1, nnz[genes, None] - 1)
        a = values.values[np.searchsorted(cum, gene_start[genes, None] + previous, side="right")]
        b = values.values[np.searchsorted(cum, gene_start[genes, None] + following, side="right")]
        edges[genes, : n_q - 1] = _numpy_lerp(a, b, gamma)
    return edges


def bin_codes(chunk: sp.csr_matrix, edges: np.ndarray) -> np.ndarray:
    """Nonzero bin (1..k) of every stored entry of ``chunk``: 1 + number of edges <= value."""
    cols = chunk.indices
    codes = np.ones(chunk.nnz, dtype=np.int64)
    for j in range(edges.shape[1]):  # at most n_bins - 1 passes, each vectorised over entries
        codes += edges[cols, j] <= chunk.data
    return codes


def one_hot(chunk: sp.csr_matrix, edges: np.ndarray, n_bins: int) -> sp.csr_matrix:
    """Cells x (genes * n_bins) indicator of each expressed gene's bin (column ``g * n_bins + bin - 1``)."""
    columns = chunk.indices.astype(np.int64) * n_bins + bin_codes(chunk, edges) - 1
    return sp.csr_matrix(
        (np.ones(chunk.nnz, dtype=np.float32), columns, chunk.indptr.copy()),
        shape=(chunk.shape[0], chunk.shape[1] * n_bins),
    )


@dataclass
class MarginalStats:
    """Per-gene and per-bin quantities every MI block needs."""

    edges: np.ndarray
    bin_counts: np.ndarray  # (genes * n_bins,) cells in each nonzero bin
    nnz: np.ndarray  # (genes,) cells expressing each gene
    sums: np.ndarray  # (genes,) column sums, for the Pearson sign
    n_cells: int
    n_bins: int


def marginal_stats(chunks: CellChunks, n_bins: int) -> MarginalStats:
    """First pass: value counts -> quantile edges, bin counts, expressed cells and column sums."""
    values = gene_values(chunks)
    edges = quantile_edges(values, n_bins)
    genes = values.gene_of_value
    codes = np.ones(len(values.values), dtype=np.int64)
    for j in range(edges.shape[1]):
        codes += edges[genes, j] <= values.values
    n_genes = values.n_genes
    bin_counts = np.bincount(genes * n_bins + codes - 1, weights=values.counts, minlength=n_genes * n_bins)
    sums = np.bincount(genes, weights=values.values * values.counts, minlength=n_genes)
    return MarginalStats(edges, bin_counts, values.nnz, sums, chunks.n_cells, n_bins)


def finish_mi(
    sum_xlogx: np.ndarray,
    both: np.ndarray,
    z_rows: np.ndarray,
    z_cols: np.ndarray,
    rows: slice,
    cols: slice,
    stats: MarginalStats,
    include_double_zeros: bool,
) -> np.ndarray:
    """MI in bits of a block of gene pairs from its Gram-derived pieces (see module docstring)."""
    nnz_a = stats.nnz[rows, None].astype(np.float64)
    nnz_b = stats.nnz[None, cols].astype(np.float64)
    only_a = nnz_a - both
    only_b = nnz_b - both
    total = nnz_a + nnz_b - both
    # z_* are the corrections sum_u [xlogx(n_u - R_ub) - xlogx(n_u)]: h_a and h_b cancel out.
    joint_terms = sum_xlogx + z_rows + z_cols
    if include_double_zeros:
        n = float(stats.n_cells)
        neither = n - total
        mi_n = joint_terms + xlogx(neither) + xlogx(np.array(n)) - xlogx(n - nnz_a) - xlogx(n - nnz_b)
        denominator = np.full_like(total, n)
    else:
        mi_n = joint_terms + xlogx(total) - xlogx(only_b) - xlogx(only_a)
        denominator = total
    with np.errstate(divide="ignore", invalid="ignore"):
        mi = np.where(denominator > 0, mi_n / denominator, 0.0) / LN2
    # Rounding of the large xlogx sums can leave -1e-15 where MI is exactly 0.
    return np.maximum(mi, 0.0)


def _row_blocks(n_genes: int, n_bins: int, block_size: int | None, n_threads: int = 1) -> list[slice]:
    """Block rows of the upper triangle, each with about the same number of gene pairs."""
    if block_size is None:
        # Dense temporaries are (block * n_bins) x genes and block x (genes * n_bins): keep each
        # near 2**24 float64 entries (128 MB), and make enough blocks to balance the threads.
        block_size = int(np.clip(2**24 // max(n_genes * n_bins, 1), 16, 1024))
        if n_threads > 1:
            block_size = min(block_size, max(16, -(-n_genes // (4 * n_threads))))
    n_blocks = -(-n_genes // block_size)
    # Row r of the upper triangle holds n_genes - r pairs: cut where the cumulative pair count is even.
    pairs_before = np.cumsum(np.arange(n_genes, 0, -1))
    targets = pairs_before[-1] * np.arange(1, n_blocks) / n_blocks
    cuts = np.unique(np.concatenate([[0], np.searchsorted(pairs_before, targets) + 1, [n_genes]]))
    # Never exceed block_size rows, so the memory bound holds for the first (widest) blocks.
    bounds = [0]
    for stop in cuts[1:]:
        while stop - bounds[-1] > block_size:
            bounds.append(bounds[-1] + block_size)
        if stop > bounds[-1]:
            bounds.append(int(stop))
    return [slice(a, b) for a, b in pairwise(bounds)]


def _sparse_block(
    chunks: CellChunks, stats: MarginalStats, rows: slice, onehots: list | None
) -> tuple[np.ndarray, ...]:
    """Gram pieces of genes ``rows`` against genes ``rows.start:`` with scipy sparse products."""
    nb = stats.n_bins
    k_rows = slice(rows.start * nb, rows.stop * nb)
    n_i = rows.stop - rows.start
    n_c = stats.nnz.shape[0] - rows.start
    if onehots is not None:  # one in-memory chunk, prepared once for every block row
        gram, cross = _block_sums(*onehots[0], rows=rows, n_bins=nb)
    else:
        gram, cross = chunks.map_reduce(partial(_chunk_block_sums, edges=stats.edges, rows=rows, n_bins=nb))
    gram = sp.csr_matrix(gram)
    coo = gram.tocoo()
    pair = (coo.row.astype(np.int64) // nb) * n_c + coo.col.astype(np.int64) // nb
    sum_xlogx = np.bincount(pair, weights=xlogx(coo.data), minlength=n_i * n_c).reshape(n_i, n_c)
    both = np.bincount(pair, weights=coo.data.astype(np.float64), minlength=n_i * n_c).reshape(n_i, n_c)
    # R[u, b]: cells in bin u of a row gene that express column gene b (and L, the mirror). Only
    # the nonzero hits change xlogx(n_u - R) from xlogx(n_u), so work is O(nnz(gram)), not O(bins x genes).
    row_hits = (gram @ _bins_to_genes(n_c, nb)).tocoo()
    col_hits = (_bins_to_genes(n_i, nb).T @ gram).tocoo()
    n_u = stats.bin_counts[k_rows][row_hits.row]
    n_v = stats.bin_counts[rows.start * nb :][col_hits.col]
    z_rows = np.bincount(
        (row_hits.row.astype(np.int64) // nb) * n_c + row_hits.col,
        weights=xlogx(n_u - row_hits.data) - xlogx(n_u),
        minlength=n_i * n_c,
    ).reshape(n_i, n_c)
    z_cols = np.bincount(
        col_hits.row.astype(np.int64) * n_c + col_hits.col // nb,
        weights=xlogx(n_v - col_hits.data) - xlogx(n_v),
        minlength=n_i * n_c,
    ).reshape(n_i, n_c)
    return sum_xlogx, both, z_rows, z_cols, cross


def _bins_to_genes(n_genes: int, n_bins: int) -> sp.csr_matrix:
    """(genes * n_bins) x genes indicator summing each gene's bin columns."""
    size = n_genes * n_bins
    return sp.csr_matrix((np.ones(size), (np.arange(size), np.arange(size) // n_bins)), shape=(size, n_genes))


def _prepare(chunk: sp.csr_matrix, edges: np.ndarray, n_bins: int) -> tuple[sp.spmatrix, ...]:
    """One-hot (transposed CSR and CSC) and expression (transposed CSR and CSC) of a chunk."""
    onehot = one_hot(chunk, edges, n_bins)
    return onehot.T.tocsr(), onehot.tocsc(), chunk.T.tocsr(), chunk.tocsc()


def _block_sums(
    onehot_t: sp.csr_matrix,
    onehot_csc: sp.csc_matrix,
    x_t: sp.csr_matrix,
    x_csc: sp.csc_matrix,
    rows: slice,
    n_bins: int,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """One chunk's one-hot Gram block (rows x genes from ``rows.start``) and raw cross products."""
    gram = onehot_t[rows.start * n_bins : rows.stop * n_bins] @ onehot_csc[:, rows.start * n_bins :]
    cross = (x_t[rows] @ x_csc[:, rows.start :]).toarray()
    return sp.csr_matrix(gram), cross


def _chunk_block_sums(chunk: sp.csr_matrix, edges: np.ndarray, rows: slice, n_bins: int) -> tuple:
    return _block_sums(*_prepare(chunk, edges, n_bins), rows=rows, n_bins=n_bins)


def _torch_block(chunks: CellChunks, stats: MarginalStats, rows: slice, device: str) -> tuple[np.ndarray, ...]:
    """The same pieces with dense one-hot GEMMs in torch (fast on a GPU)."""
    import torch

    nb = stats.n_bins
    n_genes = stats.nnz.shape[0]
    n_i, n_c = rows.stop - rows.start, n_genes - rows.start
    k_rows = slice(rows.start * nb, rows.stop * nb)
    gram = torch.zeros((n_i * nb, n_c * nb), dtype=torch.float64, device=device)
    cross = torch.zeros((n_i, n_c), dtype=torch.float64, device=device)
    # float32 sums of 0/1 are exact below 2**24 cells, so a chunk's GEMM is exact before float64 accumulation.
    # Dense one-hot pieces of at most ~2**26 entries (256 MB float32) keep device memory bounded.
    rows_per_piece = max(256, 2**26 // max(n_genes * nb, 1))
    for chunk in chunks:
        for start in range(0, chunk.shape[0], rows_per_piece):
            piece = chunk[start : start + rows_per_piece]
            dense = _dense_on(one_hot(piece, stats.edges, nb), device, torch.float32)
            gram += (dense[:, k_rows].T @ dense[:, rows.start * nb :]).double()
            expression = _dense_on(piece, device, torch.float64)
            cross += expression[:, rows].T @ expression[:, rows.start :]
    gene_pairs = gram.reshape(n_i, nb, n_c, nb)
    sum_xlogx = torch.special.xlogy(gene_pairs, gene_pairs).sum(dim=(1, 3))
    both = gene_pairs.sum(dim=(1, 3))
    n_u = torch.as_tensor(stats.bin_counts[k_rows], device=device)[:, None]
    row_left = n_u - gram.reshape(n_i * nb, n_c, nb).sum(dim=2)
    z_rows = (torch.special.xlogy(row_left, row_left) - torch.special.xlogy(n_u, n_u)).reshape(n_i, nb, n_c).sum(dim=1)
    n_v = torch.as_tensor(stats.bin_counts[rows.start * nb :], device=device)[None, :]
    col_left = n_v - gram.reshape(n_i, nb, n_c * nb).sum(dim=1)
    z_cols = (torch.special.xlogy(col_left, col_left) - torch.special.xlogy(n_v, n_v)).reshape(n_i, n_c, nb).sum(dim=2)
    return tuple(t.cpu().numpy() for t in (sum_xlogx, both, z_rows, z_cols, cross))


def _dense_on(matrix: sp.csr_matrix, device: str, dtype):
    import torch

    coo = matrix.tocoo()
    out = torch.zeros(matrix.shape, dtype=dtype, device=device)
    index = torch.as_tensor(np.vstack([coo.row, coo.col]).astype(np.int64), device=device)
    out[index[0], index[1]] = torch.as_tensor(coo.data, dtype=dtype, device=device)
    return out


def pearson_sign(cross: np.ndarray, rows: slice, cols: slice, stats: MarginalStats) -> np.ndarray:
    """Sign of the Pearson correlation from sum(x*y) and the column sums (exact for counts)."""
    n = float(stats.n_cells)
    products = stats.sums[rows, None] * stats.sums[None, cols]
    covariance_n2 = n * cross - products
    # Exact for integer counts; for floats, treat differences at rounding level as r = 0.
    tolerance = 1e-12 * (np.abs(n * cross) + np.abs(products))
    return np.where(np.abs(covariance_n2) > tolerance, np.sign(covariance_n2), 0.0)


def mutual_information(
    chunks: CellChunks,
    *,
    n_bins: int = 10,
    signed: bool = True,
    include_double_zeros: bool = False,
    backend: str = "sparse",
    device: str = "cpu",
    block_size: int | None = None,
    n_jobs: int | None = None,
    progress: Callable | None = None,
) -> np.ndarray:
    """Genes x genes (signed) binned MI in bits, float32.

    Parameters
    ----------
    chunks
        The expression matrix (non-negative) as cell chunks.
    n_bins
        Maximum number of quantile bins of a gene's nonzero values.
    signed
        Multiply by the sign of the Pearson correlation of the raw values (0 where it is 0).
    include_double_zeros
        Count cells where both genes are zero in the joint table (plug-in MI over all cells).
    backend
        ``"sparse"`` (scipy sparse products, CPU) or ``"torch"`` (dense GEMMs on ``device``).
    device
        Torch device for ``backend="torch"``.
    block_size
        Genes per block row (default: sized to keep temporaries near 128 MB).
    n_jobs
        Threads for the sparse backend (default: all cores).
    progress
        Callable wrapping an iterable with ``total=`` (e.g. ``tqdm``), or ``None``.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    if backend not in ("sparse", "torch"):
        raise ValueError(f"Unknown MI backend {backend!r}; use 'sparse', 'torch' or 'auto'.")
    stats = marginal_stats(chunks, n_bins)
    n_genes = chunks.n_genes
    out = np.zeros((n_genes, n_genes), dtype=np.float32)
    single = backend == "sparse" and chunks.n_chunks == 1 and not chunks.is_dask
    onehots = [_prepare(next(iter(chunks)), stats.edges, n_bins)] if single else None
    # a dask input is parallel over its blocks already: block rows then run one after the other
    threaded = backend == "sparse" and not chunks.is_dask
    n_threads = max(1, n_jobs or os.cpu_count() or 1) if threaded else 1
    blocks = _row_blocks(n_genes, n_bins, block_size, n_threads)

    def compute(rows: slice) -> None:
        if backend == "sparse":
            pieces = _sparse_block(chunks, stats, rows, onehots)
        else:
            pieces = _torch_block(chunks, stats, rows, device)
        sum_xlogx, both, z_rows, z_cols, cross = pieces
        cols = slice(rows.start, n_genes)
        block = finish_mi(sum_xlogx, both, z_rows, z_cols, rows, cols, stats, include_double_zeros)
        if signed:
            block = block * pearson_sign(cross, rows, cols, stats)
        out[rows, cols] = block
        out[cols, rows] = block.T

    # scipy's sparse product and numpy's reductions release the GIL: threads over block rows
    # use every core without copying the one-hot matrices into other processes.
    with ThreadPoolExecutor(n_threads) as pool:
        futures = [pool.submit(compute, rows) for rows in blocks]
        done = as_completed(futures)
        for future in progress(done, total=len(futures)) if progress else done:
            future.result()
    return out
