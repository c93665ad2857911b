"""``gv.tl.cell_embed``: cell vectors as expression-weighted means of gene vectors."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._chunks import CellChunks
from .._core._search import valid_rows
from .._utils import copy_container, get_expression, progress_bar, resolve_modality, write_uns
from ._queries import _vectors

WEIGHTINGS = ("log1p", "raw", "tfidf")


def _document_frequency(chunks: CellChunks) -> np.ndarray:
    counts = np.zeros(chunks.n_genes)
    for chunk in chunks:
        counts += np.bincount(chunk.indices, minlength=chunks.n_genes)
    return counts


def _weights(chunk: sp.csr_matrix, weighting: str, idf: np.ndarray | None) -> sp.csr_matrix:
    """Per-cell gene weights: the expression, its log1p, or TF-IDF (share of the cell's total x idf)."""
    out = chunk.copy()
    if weighting == "log1p":
        out.data = np.log1p(out.data)
    elif weighting == "tfidf":
        totals = np.asarray(out.sum(axis=1)).ravel()
        out.data = out.data / np.repeat(np.where(totals > 0, totals, 1.0), np.diff(out.indptr)) * idf[out.indices]
    return out


def cell_embed(
    adata: Any,
    key: str = "X_gv",
    *,
    method: str = "weighted",
    layer: str | None = None,
    weighting: str = "tfidf",
    key_added: str = "X_gv",
    chunk_size: int = 50_000,
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Embed cells as the expression-weighted mean of their genes' vectors, L2-normalised.

    GenePT-w / GeneVector's cell embedding: ``normalise(w(x_c) @ V)`` over the genes with a vector
    (rows of ``varm[key]`` that are NaN are left out). One sparse product per chunk of cells, so a
    million cells take seconds. The result feeds ``sc.pp.neighbors(adata, use_rep=key_added)``.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with gene vectors in ``varm[key]``.
    key
        ``varm`` key of the gene vectors (trained, imported or text-derived).
    method
        ``"weighted"`` (the expression-weighted mean).
    layer
        Layer to read instead of ``X``.
    weighting
        ``"tfidf"`` (default): ``x / cell total * log(n_cells / (1 + cells expressing the gene))``,
        which down-weights genes expressed everywhere (on pbmc68k counts it clusters the FACS
        populations best: ``benchmarks/quality.py``); ``"log1p"``: ``log(1 + x)`` (for counts);
        ``"raw"``: ``x`` as given (on log-normalised data: GeneVector's weighting).
    key_added
        ``obsm`` key (``uns['gv']`` gets ``key_added + '_cells'``).
    chunk_size
        Cells per chunk.
    progress
        Show a progress bar over chunks.
    mod
        Modality of a MuData.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the modified copy. Writes ``obsm[key_added]`` (float32 cells x dims, unit rows;
    all-zero rows for cells expressing none of the embedded genes, with a warning) and
    ``uns['gv'][key_added + '_cells']`` (the gene embedding may own ``uns['gv'][key_added]``).
    """
    modality = resolve_modality(adata, mod)
    if method != "weighted":
        raise ValueError(f"Unknown method {method!r}; cell_embed supports 'weighted'.")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"Unknown weighting {weighting!r}; use one of {WEIGHTINGS}.")
    vectors = _vectors(modality, key)
    usable = valid_rows(vectors)
    if not usable.any():
        raise ValueError(f"varm[{key!r}] has no usable gene vector (all NaN or zero).")
    gene_vectors = np.where(usable[:, None], vectors, 0.0)
    matrix, source = get_expression(modality, layer)
    chunks = CellChunks(matrix, chunk_size=chunk_size, require_nonnegative=weighting != "raw", source_name=source)
    idf = None
    if weighting == "tfidf":
        idf = np.log(chunks.n_cells / (1.0 + _document_frequency(chunks)))
    bar = progress_bar(progress, "cell embed")
    parts = []
    for chunk in bar(chunks, total=chunks.n_chunks) if bar else chunks:
        weights = _weights(chunk, weighting, idf)
        parts.append(np.asarray(weights @ gene_vectors))
    cells = np.vstack(parts)
    norms = np.linalg.norm(cells, axis=1)
    empty = norms == 0
    cells = (cells / np.where(empty, 1.0, norms)[:, None]).astype(np.float32)
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} cells express none of the genes with a vector in varm[{key!r}]; "
            "their vectors are all zeros.",
            stacklevel=2,
        )

    result = copy_container(adata) if copy else adata
    out = resolve_modality(result, mod)
    out.obsm[key_added] = cells
    # uns['gv'][key_added] may already hold the gene embedding of the same name (varm['X_gv'])
    write_uns(
        out,
        f"{key_added}_cells",
        {
            "kind": "cell_embedding",
            "method": method,
            "embedding_key": key,
            "params": {"weighting": weighting, "layer": layer},
            "n_genes_used": int(usable.sum()),
            "n_empty_cells": int(empty.sum()),
        },
    )
    return result if copy else None
