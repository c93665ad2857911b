"""Gram-matrix targets: Pearson, Spearman, cosine, Jaccard, co-occurrence and PPMI.

All of them are functions of ``X.T @ X`` (of X, its ranks shifted so zeros stay zero, or its
detection indicator) and column sums, accumulated over chunks of cells. Centring is implicit
(``X.T @ X - n * mean mean.T``), so a sparse matrix is never densified; chunks denser than
:data:`DENSE_ABOVE` go through a dense BLAS product instead, which is faster there.

Implicit centring cancels catastrophically for a gene whose mean is large against its spread
(``1e6 + noise``): Pearson's correlation then recomputes the rows of those few genes in a second
pass over the cells with explicit centring (:func:`centred_rows`); every other gene keeps the
one-pass result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import scipy.sparse as sp

from ._chunks import CellChunks, gene_values

DENSE_ABOVE = 0.1

#: A gene is recomputed with explicit centring when ``mean^2 > ILL_CONDITIONED * variance``: implicit
#: centring loses about ``log10(mean^2 / variance)`` of float64's ~16 digits.
ILL_CONDITIONED = 1e6


@dataclass
class Gram:
    """``X.T @ X`` (float64), column sums and the number of cells.

    ``chunks`` and ``transform`` (set by :func:`accumulate_gram`) let :func:`pearson_from_gram`
    read the cells again for genes whose implicit centring is ill-conditioned.
    """

    gram: np.ndarray
    sums: np.ndarray
    n_cells: int
    chunks: CellChunks | None = field(default=None, repr=False)
    transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None = field(default=None, repr=False)


def _chunk_gram(chunk: sp.csr_matrix) -> np.ndarray:
    density = chunk.nnz / max(chunk.shape[0] * chunk.shape[1], 1)
    if density > DENSE_ABOVE:
        dense = chunk.toarray()
        return dense.T @ dense
    return (chunk.T @ chunk).toarray()


def _gram_and_sums(
    chunk: sp.csr_matrix, transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None
) -> tuple[np.ndarray, np.ndarray]:
    if transform is not None:
        chunk = transform(chunk)
    return _chunk_gram(chunk), np.asarray(chunk.sum(axis=0)).ravel()


def accumulate_gram(
    chunks: CellChunks,
    transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None = None,
    progress: Callable | None = None,
) -> Gram:
    """Sum ``X.T @ X`` and column sums over the chunks (of ``transform(chunk)`` if given)."""
    gram, sums = chunks.map_reduce(partial(_gram_and_sums, transform=transform), progress=progress)
    return Gram(gram, sums, chunks.n_cells, chunks, transform)


@dataclass
class CentredRows:
    """Exactly centred cross-products of a few genes ``B`` with all genes, and their value range."""

    cross: np.ndarray  # len(B) x genes: sum over cells of (x_b - m_b) * x_j
    centred_sums: np.ndarray  # len(B): sum over cells of (x_b - m_b)
    own: np.ndarray  # len(B) x len(B): sum over cells of (x_b - m_b)(x_c - m_c)
    low: np.ndarray  # len(B): smallest value over all cells (implicit zeros included)
    high: np.ndarray  # len(B): largest value


def _chunk_centred_rows(
    chunk: sp.csr_matrix,
    genes: np.ndarray,
    means: np.ndarray,
    transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None,
) -> CentredRows:
    if transform is not None:
        chunk = transform(chunk)
    # Ill-conditioned genes are nonzero in (nearly) every cell, so their dense block is no larger
    # than their share of the sparse chunk; the chunk itself stays sparse.
    values = chunk[:, genes].toarray()
    centred = values - means[genes]
    return CentredRows(
        cross=np.asarray(chunk.T @ centred).T,
        centred_sums=centred.sum(axis=0),
        own=centred.T @ centred,
        low=values.min(axis=0, initial=np.inf),
        high=values.max(axis=0, initial=-np.inf),
    )


def _combine_centred_rows(a: CentredRows, b: CentredRows) -> CentredRows:
    return CentredRows(
        a.cross + b.cross,
        a.centred_sums + b.centred_sums,
        a.own + b.own,
        np.minimum(a.low, b.low),
        np.maximum(a.high, b.high),
    )


def centred_rows(
    chunks: CellChunks,
    genes: np.ndarray,
    means: np.ndarray,
    transform: Callable[[sp.csr_matrix], sp.csr_matrix] | None = None,
) -> CentredRows:
    """Second pass over the cells: explicitly centred cross-products of ``genes`` with every gene.

    Memory is ``len(genes) x n_genes`` for the result plus, per chunk of cells, a dense block of
    the chosen genes.
    """
    return chunks.map_reduce(
        partial(_chunk_centred_rows, genes=genes, means=means, transform=transform), _combine_centred_rows
    )


def _refine_ill_conditioned(stats: Gram, covariance: np.ndarray) -> np.ndarray:
    """Recompute, in place, the covariance rows of genes whose implicit centring lost precision.

    Returns the mask of genes that are truly constant (all values equal, implicit zeros included).
    """
    n = stats.n_cells
    means = stats.sums / n
    variance = np.diag(covariance) / n
    squares = np.diag(stats.gram)
    all_zero = squares == 0  # a sum of squares is 0 only when every value is exactly 0
    ill = ~all_zero & ((means**2 > ILL_CONDITIONED * np.maximum(variance, 0.0)) | (variance <= 1e-12 * squares / n))
    if not ill.any():
        return all_zero
    genes = np.flatnonzero(ill)
    rows = centred_rows(stats.chunks, genes, means, stats.transform)
    # sum (x_b - mu_b)(x_j - mu_j) = sum (x_b - m_b) x_j - mu_j sum (x_b - m_b), with m_b the mean as computed
    cross = rows.cross - np.outer(rows.centred_sums, means)
    own = rows.own - np.outer(rows.centred_sums, rows.centred_sums) / n
    cross[:, genes] = own
    covariance[genes, :] = cross
    covariance[:, genes] = cross.T
    constant = all_zero.copy()
    constant[genes] = (rows.low == rows.high) | (np.diag(own) <= 0)
    return constant


def pearson_from_gram(stats: Gram) -> tuple[np.ndarray, np.ndarray]:
    """Pearson correlation; genes with zero variance get 0 everywhere. Also returns their mask.

    With ``stats.chunks`` (as :func:`accumulate_gram` leaves it), genes whose mean is large against
    their spread are recomputed by explicit centring in a second pass, and a gene counts as constant
    only when all its values are equal. Without it, a relative variance below 1e-12 counts as 0.
    """
    n = stats.n_cells
    covariance = stats.gram - np.outer(stats.sums, stats.sums) / n
    if stats.chunks is not None and n > 0:
        constant = _refine_ill_conditioned(stats, covariance)
        variance = np.diag(covariance).copy()
    else:
        variance = np.diag(covariance).copy()
        # Implicit centring leaves rounding noise where the variance is truly 0 (constant genes).
        scale = np.maximum(np.diag(stats.gram), 1e-300)
        constant = variance <= 1e-12 * scale
    std = np.sqrt(np.where(constant, 1.0, variance))
    corr = covariance / std[:, None] / std[None, :]
    corr[constant, :] = 0.0
    corr[:, constant] = 0.0
    np.clip(corr, -1.0, 1.0, out=corr)
    diagonal = np.where(constant, 0.0, 1.0)
    np.fill_diagonal(corr, diagonal)
    return corr, constant


def cosine_from_gram(stats: Gram) -> np.ndarray:
    """Cosine similarity of the gene vectors over cells; an all-zero gene gets 0."""
    norms = np.sqrt(np.diag(stats.gram))
    safe = np.where(norms > 0, norms, 1.0)
    cosine = stats.gram / safe[:, None] / safe[None, :]
    return np.clip(cosine, -1.0, 1.0)


def jaccard_from_gram(stats: Gram) -> np.ndarray:
    """Jaccard index of detection (Gram of the 0/1 indicator); 0 where neither gene is detected."""
    detected = np.diag(stats.gram)
    union = detected[:, None] + detected[None, :] - stats.gram
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, stats.gram / union, 0.0)


def cooccurrence_from_gram(stats: Gram) -> np.ndarray:
    """exp2vec's term co-occurrence: ``X.T @ X`` with the diagonal set to ``(diag - colsums) / 2``.

    For counts, the corrected diagonal is the number of within-cell pairs of a gene's own
    molecules, ``sum x (x - 1) / 2`` (quanteda's self-co-occurrence convention).
    """
    co = stats.gram.copy()
    np.fill_diagonal(co, (np.diag(co) - stats.sums) / 2)
    return co


def ppmi_from_cooccurrence(co: np.ndarray) -> np.ndarray:
    """Positive pointwise mutual information ``max(0, log(c_ij * total / (row_i * col_j)))``."""
    rows = co.sum(axis=1)
    cols = co.sum(axis=0)
    total = co.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(co * total / np.outer(rows, cols))
    return np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)


def binary_transform(chunk: sp.csr_matrix) -> sp.csr_matrix:
    """Detected (nonzero) or not."""
    out = chunk.copy()
    out.data = np.ones_like(out.data)
    return out


def rank_transform(chunks: CellChunks) -> Callable[[sp.csr_matrix], sp.csr_matrix]:
    """Map each value to its average rank within its gene minus the rank of 0 (zeros stay zero).

    Spearman's correlation is Pearson's on ranks and is unchanged by a per-gene shift, so this
    keeps the matrix sparse. Ranks are computed over all cells (ties averaged, as scipy does)
    from one pass of value counts.
    """
    values = gene_values(chunks)
    n = values.n_cells
    genes = values.gene_of_value
    n_zero = n - values.nnz
    # Values below a given one in its gene: earlier distinct values, plus the zeros if it is positive.
    cum = np.cumsum(values.counts)
    before_in_gene = cum - values.counts - np.concatenate([[0], cum])[values.ptr[:-1]][genes]
    rank = before_in_gene + (values.values > 0) * n_zero[genes] + (values.counts + 1) / 2
    negatives = np.bincount(genes, weights=(values.values < 0) * values.counts, minlength=values.n_genes)
    rank_of_zero = negatives + (n_zero + 1) / 2
    shifted = rank - rank_of_zero[genes]

    def transform(chunk: sp.csr_matrix) -> sp.csr_matrix:
        out = chunk.copy()
        out.data = shifted[values.lookup(chunk.indices, chunk.data)]
        return out

    return transform
