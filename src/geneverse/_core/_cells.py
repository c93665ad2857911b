"""Cell vectors as expression-weighted sums of gene vectors (GenePT-w, GeneVector), on arrays.

Weights per cell and gene: the expression itself (``raw``), ``log1p`` of it, or TF-IDF (the gene's
share of the cell's total times ``log(n_cells / (1 + cells detecting the gene))``). Each chunk of
cells is one sparse x dense product; the cell vectors are scaled to unit length.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import scipy.sparse as sp

from ._chunks import CellChunks

WEIGHTINGS = ("log1p", "raw", "tfidf")


def _detected(chunk: sp.csr_matrix) -> np.ndarray:
    return np.bincount(chunk.indices, minlength=chunk.shape[1]).astype(np.float64)


def inverse_document_frequency(chunks: CellChunks) -> np.ndarray:
    """``log(n_cells / (1 + number of cells in which the gene is detected))`` per gene."""
    return np.log(chunks.n_cells / (1.0 + chunks.map_reduce(_detected)))


def cell_weights(chunk: sp.csr_matrix, weighting: str, idf: np.ndarray | None = None) -> sp.csr_matrix:
    """Per-cell gene weights: the expression, its log1p, or TF-IDF (share of the cell's total x idf)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"Unknown weighting {weighting!r}; use one of {WEIGHTINGS}.")
    out = chunk.copy()
    if weighting == "log1p":
        out.data = np.log1p(out.data)
    elif weighting == "tfidf":
        if idf is None:
            raise ValueError("weighting='tfidf' needs the genes' idf.")
        totals = np.asarray(out.sum(axis=1)).ravel()
        out.data = out.data / np.repeat(np.where(totals > 0, totals, 1.0), np.diff(out.indptr)) * idf[out.indices]
    return out


def _embed_chunk(chunk: sp.csr_matrix, weighting: str, idf: np.ndarray | None, vectors: np.ndarray) -> np.ndarray:
    return np.asarray(cell_weights(chunk, weighting, idf) @ vectors)


def weighted_sums(
    chunks: CellChunks, vectors: np.ndarray, weighting: str, progress: Callable | None = None
) -> np.ndarray:
    """Cells x columns: each cell's weighted expression ``w(x)`` (see :func:`cell_weights`) @ ``vectors``.

    The idf of ``"tfidf"`` takes one pass over the cells first.
    """
    idf = inverse_document_frequency(chunks) if weighting == "tfidf" else None
    return chunks.map_concat(partial(_embed_chunk, weighting=weighting, idf=idf, vectors=vectors), progress)


def weighted_cell_vectors(
    chunks: CellChunks, vectors: np.ndarray, weighting: str, progress: Callable | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-length cell vectors ``normalise(w(x) @ vectors)`` and the mask of cells left all-zero.

    Parameters
    ----------
    chunks
        Cells x genes expression, streamed in chunks.
    vectors
        genes x dims gene vectors (rows of genes without a vector set to 0).
    weighting
        ``"log1p"``, ``"raw"`` or ``"tfidf"``.
    progress
        tqdm-like factory, or ``None``.

    Returns
    -------
    float32 cells x dims vectors, and a boolean mask of cells whose weighted sum is 0.
    """
    cells = weighted_sums(chunks, vectors, weighting, progress)
    norms = np.linalg.norm(cells, axis=1)
    empty = norms == 0
    return (cells / np.where(empty, 1.0, norms)[:, None]).astype(np.float32), empty
