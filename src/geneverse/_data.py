"""The data handler: the one place that reads inputs from, and writes results into, AnnData/MuData.

Readers (public as :mod:`geneverse.get`, like ``scanpy.get``) resolve a MuData modality, check
that what they read is there and well-formed, and name the call that writes it when it is
missing. :func:`write_result` is the one way a tool stores its outputs: it copies the container
when ``copy=True``, writes every slot, records the parameters with the package version and the
seconds taken in ``uns['gv'][key]``, and logs what was written (scanpy's ``deep=`` message). Files
are written elsewhere, atomically (``geneverse._files``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from ._docs import shared_docs
from ._keys import Key
from ._utils import check_unique_var_names, copy_container, get_expression, logger, resolve_modality, write_uns

#: The slots :func:`write_result` writes into, in the order they are written.
SLOTS = ("X", "layers", "obs", "var", "obsm", "varm", "obsp", "varp")


@shared_docs
def write_result(
    data: Any,
    key: str,
    record: Mapping[str, Any],
    *,
    mod: str | None = None,
    copy: bool = False,
    started: float | None = None,
    **slots: Mapping[str, Any],
) -> Any:
    """Store a tool's outputs and its record; the single ending of every writer.

    Call it only once everything is computed and checked: nothing is written before.

    Parameters
    ----------
    data
        The AnnData or MuData the tool was given.
    key
        The ``uns['gv']`` record's name (usually the tool's ``key_added``).
    record
        What to record: ``kind``, ``params`` and anything the tool reports; ``version`` and
        ``seconds`` are added here.
    {doc_mod}
    copy
        Write into a copy of ``data`` and return it, leaving ``data`` untouched.
    started
        ``time.perf_counter()`` when the tool began (gives ``seconds``); a ``seconds`` already in
        ``record`` is kept.
    **slots
        For each slot (``obsm=``, ``varm=``, ``varp=``, ``obsp=``, ``obs=``, ``var=``, ``layers=``),
        a mapping of names to values.

    Returns
    -------
    The copy when ``copy=True``, else ``None``.
    """
    from . import __version__

    unknown = sorted(set(slots) - set(SLOTS))
    if unknown:
        raise TypeError(f"write_result got unknown slots {unknown}; use {SLOTS}.")
    result = copy_container(data) if copy else data
    out = resolve_modality(result, mod)
    written = []
    for slot in SLOTS:
        for name, value in (slots.get(slot) or {}).items():
            getattr(out, slot)[name] = value
            written.append(f"{slot}[{name!r}]")
    full = dict(record)
    full.setdefault("version", __version__)
    if "seconds" not in full and started is not None:
        full["seconds"] = round(time.perf_counter() - started, 4)
    write_uns(out, key, full)
    written.append(f"uns[{Key.UNS!r}][{key!r}]")
    seconds = full.get("seconds")
    logger.info("added %s%s", ", ".join(written), f" ({seconds:.2f} s)" if isinstance(seconds, float) else "")
    return result if copy else None


# ------------------------------------------------------------------------------------------- readers


def find_record(modality: Any, key: str) -> Mapping | None:
    """``uns['gv'][key]`` when it is a record (a mapping), else ``None``; nothing raises."""
    store = modality.uns.get(Key.UNS, {})
    found = store.get(key) if isinstance(store, Mapping) else None
    return found if isinstance(found, Mapping) else None


def training_coexpression(modality: Any, vectors_key: str) -> Mapping | None:
    """The record of the co-expression that ``embed`` trained ``varm[vectors_key]`` on, if it is known.

    ``None`` for imported or text-derived vectors, and for a target without a record of its layer.
    """
    embedding = find_record(modality, vectors_key)
    if embedding is None or embedding.get("kind") != "embedding" or embedding.get("method") == "imported":
        return None
    found = find_record(modality, str(embedding.get("target_key")))
    return found if found is not None and found.get("kind") == "coexpression" and "layer" in found else None


def recorded_layer(modality: Any, vectors_key: str) -> str | None:
    """The layer the co-expression behind ``varm[vectors_key]`` was computed from (it may be gone since).

    ``None`` for ``X`` and where nothing is recorded. Records store ``None`` as the string ``"None"``.
    """
    found = training_coexpression(modality, vectors_key)
    layer = None if found is None else found["layer"]
    if layer is None or (str(layer) == "None" and "None" not in modality.layers):
        return None
    return str(layer)


def coexpression_varp(modality: Any, key: str) -> Any:
    """``varp[key]`` as stored; a missing key raises a KeyError naming the fix."""
    if key not in modality.varp:
        raise KeyError(
            f"No co-expression matrix varp[{key!r}]; run `gv.tl.coexpression(adata, key_added={key!r})` first. "
            f"varp keys: {list(modality.varp.keys())}."
        )
    return modality.varp[key]


@shared_docs
def record(adata: Any, key: str, *, kind: str | None = None, mod: str | None = None) -> dict:
    """The record a geneverse tool left in ``uns['gv'][key]``.

    Parameters
    ----------
    {doc_adata}
    key
        The tool's ``key_added``.
    kind
        The record's expected ``kind`` (e.g. ``"programs"``); another kind raises.
    {doc_mod}

    Returns
    -------
    The record (a dict; modify a copy).
    """
    modality = resolve_modality(adata, mod)
    found = find_record(modality, key)
    if found is None:
        store = modality.uns.get(Key.UNS, {})
        available = sorted(store) if isinstance(store, Mapping) else []
        raise KeyError(f"No geneverse record uns[{Key.UNS!r}][{key!r}]; records: {available}.")
    if kind is not None and found.get("kind") != kind:
        raise KeyError(f"uns[{Key.UNS!r}][{key!r}] holds a {found.get('kind')!r} record, not {kind!r}.")
    return dict(found)


@shared_docs
def expression(adata: Any, layer: str | None = None, *, mod: str | None = None) -> Any:
    """The expression matrix geneverse reads: ``X`` or a layer (as stored: dense, sparse, backed or dask).

    Parameters
    ----------
    {doc_adata}
    {doc_layer}
    {doc_mod}

    Returns
    -------
    The cells x genes matrix (not copied).
    """
    return get_expression(resolve_modality(adata, mod), layer)[0]


def _float_matrix(stored: Any, where: str, shape: str) -> np.ndarray:
    """A stored embedding (dense, sparse or DataFrame) as float64: vectors are few enough to densify."""
    if sp.issparse(stored):
        stored = stored.toarray()
    elif isinstance(stored, pd.DataFrame):
        stored = stored.to_numpy()
    try:
        return np.asarray(stored, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{where} must hold numbers ({shape}), got {type(stored).__name__} ({error}).") from None


@shared_docs
def gene_vectors(adata: Any, key: str = Key.GENE_VECTORS, *, mod: str | None = None) -> np.ndarray:
    """Gene vectors from ``varm[key]`` as a float64 genes x dims array (NaN rows: genes without a vector).

    Parameters
    ----------
    {doc_adata}
    key
        ``varm`` key (trained by :func:`geneverse.tl.embed`, imported by
        :func:`geneverse.io.read_embeddings`, or any genes x dims array; sparse is densified).
    {doc_mod}

    Returns
    -------
    genes x dims float64 array, in ``var_names`` order.
    """
    modality = resolve_modality(adata, mod)
    if key not in modality.varm:
        raise KeyError(
            f"No gene vectors varm[{key!r}]; run `gv.tl.embed(adata, key_added={key!r})` or "
            f"`gv.io.read_embeddings(adata, ..., key_added={key!r})` first. varm keys: {list(modality.varm.keys())}."
        )
    vectors = _float_matrix(modality.varm[key], f"varm[{key!r}]", "genes x dims")
    if vectors.ndim != 2 or vectors.shape[0] != modality.n_vars:
        raise ValueError(f"varm[{key!r}] must be genes x dims, got shape {vectors.shape}.")
    return vectors


@shared_docs
def gene_names(adata: Any, gene_symbols: str | None = None, *, mod: str | None = None) -> pd.Index:
    """The names genes are addressed by: ``var_names``, or the ``var[gene_symbols]`` column as text.

    Parameters
    ----------
    {doc_adata}
    gene_symbols
        ``var`` column holding the names (e.g. symbols when ``var_names`` are Ensembl IDs).
    {doc_mod}

    Returns
    -------
    One name per gene, in ``var`` order.
    """
    modality = resolve_modality(adata, mod)
    if gene_symbols is None:
        return modality.var_names
    if gene_symbols not in modality.var.columns:
        raise KeyError(
            f"gene_symbols={gene_symbols!r} is not a column of adata.var; columns: {list(modality.var.columns)}."
        )
    return pd.Index(modality.var[gene_symbols].astype(str))


@shared_docs
def coexpression(adata: Any, key: str = Key.COEXPRESSION, *, mod: str | None = None) -> pd.DataFrame:
    """A co-expression matrix from ``varp[key]`` as a genes x genes DataFrame.

    Only the genes it was computed on are returned (all genes, or the ``genes=`` subset).

    Parameters
    ----------
    {doc_adata}
    key
        The ``key_added`` of :func:`geneverse.tl.coexpression`.
    {doc_mod}

    Returns
    -------
    Square DataFrame indexed and labelled by gene name (a copy: changing it leaves ``varp`` as it is).
    """
    genes, matrix = coexpression_matrix(resolve_modality(adata, mod), key)
    return pd.DataFrame(matrix, index=genes, columns=genes, copy=True)


#: ``storage`` in a co-expression record whose matrix keeps each gene's strongest partners only
#: (:func:`geneverse.io.compact_coexpression`).
TOP_K_STORAGE = "top_k"


def coexpression_storage(modality: Any, key: str) -> str | None:
    """How ``varp[key]`` is stored (``"float16"``, ``"top_k"``), or ``None`` for a full matrix."""
    found = find_record(modality, key)
    return None if found is None else found.get("storage")


def coexpression_matrix(modality: Any, key: str) -> tuple[list[str], np.ndarray]:
    """The genes and the dense matrix of ``varp[key]`` over them.

    A view of ``varp`` (no genes x genes copy) when they are all genes in order: callers only read it.
    """
    check_unique_var_names(modality)
    matrix = coexpression_varp(modality, key)
    found = find_record(modality, key)
    genes = [str(g) for g in (modality.var_names if found is None else found.get("genes", modality.var_names))]
    positions = modality.var_names.get_indexer(genes)
    if (positions < 0).any():
        raise KeyError(f"uns[{Key.UNS!r}][{key!r}]['genes'] names genes that are no longer in var_names.")
    if len(positions) != modality.n_vars or (positions != np.arange(modality.n_vars)).any():
        matrix = matrix[positions][:, positions]
    return genes, matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)


@shared_docs
def programs(adata: Any, key: str = Key.PROGRAMS, *, mod: str | None = None) -> dict[str, list[str]]:
    """Gene programs found by :func:`geneverse.tl.programs`: program name -> genes, most central first.

    Parameters
    ----------
    {doc_adata}
    key
        The ``key_added`` of :func:`geneverse.tl.programs`.
    {doc_mod}

    Returns
    -------
    Dict of program name -> list of gene names.
    """
    found = find_record(resolve_modality(adata, mod), key)
    if found is None or "programs" not in found:
        raise KeyError(
            f"No programs in uns[{Key.UNS!r}][{key!r}]; run `gv.tl.programs(adata, key_added={key!r})` "
            "or pass a dict of program name -> genes."
        )
    return {str(name): [str(g) for g in np.asarray(genes).ravel()] for name, genes in found["programs"].items()}


@shared_docs
def program_scores(adata: Any, key: str = Key.SCORES, *, mod: str | None = None) -> pd.DataFrame:
    """Program scores per cell written by :func:`geneverse.tl.score_programs` (cells x programs).

    Parameters
    ----------
    {doc_adata}
    key
        The ``key_added`` of :func:`geneverse.tl.score_programs`.
    {doc_mod}

    Returns
    -------
    The DataFrame stored in ``obsm[key]`` (not copied).
    """
    modality = resolve_modality(adata, mod)
    if key not in modality.obsm:
        raise KeyError(
            f"No program scores obsm[{key!r}]; run `gv.tl.programs(adata)` then "
            f"`gv.tl.score_programs(adata, key_added={key!r})`. obsm keys: {list(modality.obsm.keys())}."
        )
    scores = modality.obsm[key]
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(f"obsm[{key!r}] must be a DataFrame of programs (as gv.tl.score_programs writes).")
    return scores


@shared_docs
def cell_vectors(
    adata: Any, key: str = Key.CELL_VECTORS, *, mod: str | None = None, finite: bool = False
) -> np.ndarray:
    """Cell vectors from ``obsm[key]`` (written by :func:`geneverse.tl.cell_embed`) as a float64 array.

    Parameters
    ----------
    {doc_adata}
    key
        ``obsm`` key.
    {doc_mod}
    finite
        Raise a ``ValueError`` if a vector holds NaN or infinite values.

    Returns
    -------
    cells x dims float64 array.
    """
    modality: AnnData = resolve_modality(adata, mod)
    if key not in modality.obsm:
        raise KeyError(
            f"No cell vectors obsm[{key!r}]; run `gv.tl.cell_embed(adata, key_added={key!r})` first. "
            f"obsm keys: {list(modality.obsm.keys())}."
        )
    values = _float_matrix(modality.obsm[key], f"obsm[{key!r}]", "cells x dims")
    if finite and not np.all(np.isfinite(values)):
        bad = int((~np.isfinite(values)).any(axis=1).sum())
        raise ValueError(
            f"obsm[{key!r}] has NaN or infinite values in {bad} cells; rerun `gv.tl.cell_embed` (or drop those cells)."
        )
    return values
