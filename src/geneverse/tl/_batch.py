"""``gv.tl.batch_correct``: cell vectors free of batch, cell types kept."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._core._batch import soft_cluster_correct, unit_rows
from .._core._capture import CAPTURE_MIN_CELLS, CAPTURE_PRIOR, CAPTURE_SHARE, RowScaled, capture_factors
from .._core._cells import weighted_cell_vectors
from .._core._chunks import CellChunks
from .._core._search import valid_rows
from .._data import cell_vectors, gene_vectors, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import (
    check_finite_number,
    check_positive_int,
    check_seed,
    get_expression,
    progress_bar,
    resolve_modality,
)

#: k-means clusters of the cell vectors in which ``capture=True`` estimates the capture factors.
CAPTURE_CLUSTERS = 10
#: Rounds of clustering, estimating the factors and embedding the rescaled counts.
CAPTURE_ROUNDS = 2


def batch_codes(modality: Any, batch_key: str, reference: str | None = None) -> tuple[np.ndarray, list[str]]:
    """Batch code per cell and the batch names; checks that there are batches to correct."""
    if batch_key not in modality.obs:
        raise KeyError(f"No obs column {batch_key!r} with the batches; obs columns: {list(modality.obs.columns)}.")
    labels = modality.obs[batch_key]
    if labels.isna().any():
        raise ValueError(
            f"obs[{batch_key!r}] has {int(labels.isna().sum())} cells without a batch; label or drop them."
        )
    codes, names = pd.factorize(labels.astype(str), sort=True)
    names = list(names)
    if len(names) < 2:
        raise ValueError(f"obs[{batch_key!r}] holds one batch only ({names}); there is nothing to correct.")
    sizes = np.bincount(codes, minlength=len(names))
    small = [name for name, size in zip(names, sizes, strict=True) if size < 2]
    if small:
        raise ValueError(
            f"Batches {small} of obs[{batch_key!r}] have a single cell; a batch's offset cannot be estimated "
            "from one cell: merge them into another batch or drop them."
        )
    if reference is not None and str(reference) not in names:
        raise KeyError(f"reference {reference!r} is not a batch of obs[{batch_key!r}]; batches: {names}.")
    return codes.astype(np.intp), names


@shared_docs
def batch_correct(
    adata: Any,
    batch_key: str,
    *,
    cells_key: str = Key.CELL_VECTORS,
    key_added: str = Key.CORRECTED,
    reference: str | None = None,
    theta: float = 2.0,
    ridge: float | None = None,
    n_clusters: int | None = None,
    max_rounds: int = 10,
    capture: bool = False,
    layer: str | None = None,
    chunk_size: int = 20_000,
    seed: int = 0,
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Remove batch effects from cell vectors while keeping cell types apart.

    Harmony's model (Korsunsky et al. 2019) on the cell vectors of :func:`cell_embed`: cells are
    softly clustered on the unit sphere with a penalty (``theta``) that pushes every cluster to
    hold the batches in their overall proportions; within each cluster, a ridge regression on the
    batch removes each batch's offset while the cluster's own position (its biology) stays.
    Clustering and correction alternate until the objective changes by less than 1e-4. Unlike
    genevector's ``batch_correct``, which moves every batch by the difference of its mean vector
    from the reference's, the offsets are local, so a cell type present in some batches only does
    not drag the others. ``benchmarks/batch.py`` compares both, and ``harmonypy``, on planted
    batches (gene-specific capture, depth, batch-specific types).

    With ``capture=True`` the batch effect is removed from the counts instead, where gene-specific
    capture acts: the cells corrected as above are grouped by k-means (10 clusters); in the
    clusters that hold several batches, each gene's capture factor per batch is fitted (Poisson
    model of the cluster's level times the batch's factor, with 20 pseudo-counts shrinking rare
    genes' factors to 1; ``_core/_capture.py``); each cell's counts are divided by its batch's
    factors and embedded again as :func:`cell_embed` did (its record gives the layer, weighting and
    gene vectors). Two rounds, the second clustering the first one's cells. The result is those
    vectors: no soft-cluster offsets are removed after, as they cost cell types on planted
    batches. On planted data it mixed batches with strong capture effects far better (mixing
    0.80-0.90 against 0.59-0.66) at a 15-NN accuracy ratio of 0.93-0.98 (``benchmarks/batch.py``).

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with cell vectors in ``obsm[cells_key]``.
    batch_key
        ``obs`` column of the batches (at least two, each with at least two cells).
    cells_key
        ``obsm`` key of the cell vectors (:func:`cell_embed`).
    key_added
        ``obsm`` key of the corrected vectors (unit length, as :func:`cell_embed`'s).
    reference
        A batch left where it is (only the others move): e.g. an atlas you map onto.
    theta
        Diversity penalty: 0 is plain soft clustering (little mixing); larger mixes more.
    ridge
        Ridge penalty on the batch offsets: larger corrects less. ``None`` (default): 0.2 x the
        cells expected from the batch in the cluster, as Harmony 2 (``lamb=None``); on planted batches
        it kept more of the cell types than a fixed penalty of 1 (harmonypy 0.0.x's default) at
        about the same mixing (``benchmarks/batch.py``).
    n_clusters
        Soft clusters (default ``min(100, n_cells / 30)``, at least 2).
    max_rounds
        Rounds of clustering and correction.
    capture
        Also remove per-batch gene capture factors from the counts and embed the cells again (see
        above). Needs cell vectors from :func:`cell_embed` with a weighted sum (its record) and their counts.
    layer
        With ``capture``: the counts; default: the layer :func:`cell_embed` read (its record).
    {doc_chunk_size}
    seed
        Seed of the cluster start and the update order.
    progress
        Show a progress bar over the rounds.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``obsm[key_added]`` (cells x dims, float32) and
    ``uns['gv'][key_added]`` (the parameters, the rounds run, whether the objective converged, and
    the length of the mean shift of each batch, in the order of ``batches``; with ``capture``, also
    ``capture``: the shared clusters per round, the prior, each batch's spread of log factors and
    whether the factors were ``applied``). Cells whose vector is zero stay zero.
    """
    started = time.perf_counter()
    modality = resolve_modality(adata, mod)
    codes, names = batch_codes(modality, batch_key, reference)
    theta = check_finite_number("theta", theta, nonnegative=True)
    ridge = None if ridge is None else check_finite_number("ridge", ridge, positive=True)
    max_rounds = check_positive_int("max_rounds", max_rounds)
    seed = check_seed(seed)
    cells = cell_vectors(modality, cells_key, finite=True)
    check_positive_int("chunk_size", chunk_size)
    if not isinstance(capture, bool | np.bool_):
        raise TypeError(f"capture must be True or False, got {capture!r}.")
    if layer is not None and not capture:
        raise ValueError(
            "layer= is read by capture=True (the counts); without it batch_correct reads the cell vectors."
        )
    embedding = _embedding_of(modality, cells_key, layer, cells.shape[1]) if capture else None
    filled = np.any(cells != 0, axis=1)
    n_filled = int(filled.sum())
    k = min(100, n_filled // 30) if n_clusters is None else check_positive_int("n_clusters", n_clusters)
    k = max(2, k)
    if k > n_filled:
        raise ValueError(f"n_clusters={k} exceeds the {n_filled} cells with a vector; lower n_clusters.")
    usable = np.bincount(codes[filled], minlength=len(names))
    empty = [name for name, n in zip(names, usable, strict=True) if n < 2]
    if empty:
        raise ValueError(
            f"Batches {empty} have fewer than 2 cells with a nonzero vector in obsm[{cells_key!r}] (no expressed "
            "gene with a vector); drop those cells or batches first."
        )
    reference_code = None if reference is None else names.index(str(reference))
    result = soft_cluster_correct(
        cells[filled],
        codes[filled],
        len(names),
        n_clusters=k,
        theta=theta,
        ridge=ridge,
        reference=reference_code,
        max_rounds=max_rounds,
        seed=seed,
        progress=progress_bar(progress, "batch correct"),
    )
    corrected = np.zeros_like(cells, dtype=np.float32)
    corrected[filled] = result.vectors
    capture_record: dict[str, Any] = {}
    if embedding is not None:
        corrected, capture_record = _capture_correct(
            corrected, filled, codes, len(names), reference_code, embedding, chunk_size, seed, progress
        )
    shift = corrected[filled] - unit_rows(cells[filled])
    offsets = [
        float(np.linalg.norm(shift[codes[filled] == b].mean(axis=0))) if (codes[filled] == b).any() else 0.0
        for b in range(len(names))
    ]
    record = {
        "kind": "batch_correction",
        "params": {
            "batch_key": batch_key,
            "cells_key": cells_key,
            "reference": reference,
            "theta": theta,
            "ridge": ridge,
            "n_clusters": int(k),
            "max_rounds": max_rounds,
            "capture": bool(capture),
            "layer": None if embedding is None else embedding["layer"],
            "seed": seed,
        },
        **({"capture": capture_record} if capture_record else {}),
        "batches": np.asarray(names, dtype=object),
        "rounds": len(result.objective),
        "converged": bool(result.converged),
        "mean_offset": np.asarray(offsets),
    }
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, obsm={key_added: corrected})


def _embedding_of(modality: Any, cells_key: str, layer: str | None, dims: int) -> dict:
    """How ``obsm[cells_key]`` was embedded (its ``cell_embed`` record), checked for ``capture=True``."""
    record = modality.uns.get("gv", {}).get(Key.cell_record(cells_key))
    if record is None or str(record.get("method")) != "weighted":
        raise KeyError(
            f"capture=True embeds the cells again as obsm[{cells_key!r}] was embedded, but it has no cell_embed "
            "record of a weighted sum; run `gv.tl.cell_embed(adata, layer='counts')` first."
        )
    params = record.get("params", {})
    if str(params.get("weighting")) == "raw":
        raise ValueError(
            f"obsm[{cells_key!r}] weighs raw values (weighting='raw', e.g. log-normalised data); capture=True fits "
            "capture factors on counts: embed the cells from counts (`gv.tl.cell_embed(adata, layer='counts')`)."
        )
    recorded = params.get("layer")
    recorded = None if recorded is None or str(recorded) == "None" else str(recorded)
    layer = recorded if layer is None else layer
    if layer is not None and layer not in modality.layers:
        raise KeyError(f"No layers[{layer!r}] with the counts; pass `layer=`. Layers: {list(modality.layers)}.")
    vectors = gene_vectors(modality, str(record.get("embedding_key")))
    if vectors.shape[1] != dims:
        raise ValueError(
            f"obsm[{cells_key!r}] has {dims} dimensions but the gene vectors its record names "
            f"(varm[{record.get('embedding_key')!r}]) {vectors.shape[1]}; embed the cells again "
            "with `gv.tl.cell_embed`."
        )
    matrix, source = get_expression(modality, layer)
    return {
        "layer": layer,
        "weighting": str(params.get("weighting")),
        "vectors": np.where(valid_rows(vectors)[:, None], vectors, 0.0),
        "matrix": matrix,
        "source": source,
    }


def _capture_correct(
    corrected: np.ndarray,
    filled: np.ndarray,
    codes: np.ndarray,
    n_batches: int,
    reference: int | None,
    embedding: dict,
    chunk_size: int,
    seed: int,
    progress: bool,
) -> tuple[np.ndarray, dict]:
    """Cells embedded again from counts divided by per-batch gene capture factors (``capture=True``)."""
    from sklearn.cluster import KMeans

    weighting = embedding["weighting"]
    counts = CellChunks(
        embedding["matrix"], chunk_size=chunk_size, require_nonnegative=True, source_name=embedding["source"]
    )
    current, shared_clusters, result = corrected, [], None
    factors = np.ones((n_batches, counts.n_genes))
    k = min(CAPTURE_CLUSTERS, int(filled.sum()))
    bar = progress_bar(progress, "batch correct: capture")
    for _ in range(CAPTURE_ROUNDS):
        clusters = np.full(len(codes), -1)
        clusters[filled] = KMeans(k, n_init=4, random_state=seed).fit_predict(current[filled])
        found, n_shared = capture_factors(counts, codes, n_batches, clusters, k, reference=reference)
        shared_clusters.append(n_shared)
        if n_shared == 0:  # nothing to fit the factors in: keep the last round's vectors
            break
        factors = found
        scaled = CellChunks(
            RowScaled(embedding["matrix"], codes, factors),
            chunk_size=chunk_size,
            require_nonnegative=weighting != "raw",
            source_name=embedding["source"],
        )
        current, _ = weighted_cell_vectors(scaled, embedding["vectors"], weighting, bar)
        result = current
    if result is None:
        warnings.warn(
            f"capture=True found no cluster of at least {CAPTURE_MIN_CELLS} cells from two or more batches to fit "
            "the capture factors in; the soft-cluster correction is returned alone.",
            stacklevel=3,
        )
        result = corrected
    record = {
        "rounds": CAPTURE_ROUNDS,
        "clusters": k,
        "shared_clusters": np.asarray(shared_clusters, dtype=np.int64),
        "prior": CAPTURE_PRIOR,
        "share": CAPTURE_SHARE,
        "log_factor_sd": np.log(factors).std(axis=1),
        "applied": result is not corrected,
    }
    out = np.zeros_like(corrected, dtype=np.float32)
    out[filled] = result[filled]
    return out, record
