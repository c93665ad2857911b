"""``gv.tl.batch_correct``: cell vectors free of batch, cell types kept."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from .._core._batch import soft_cluster_correct, unit_rows
from .._data import cell_vectors, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import check_finite_number, check_positive_int, check_seed, progress_bar, resolve_modality


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
    the length of the mean shift of each batch, in the order of ``batches``). Cells whose vector is zero stay zero.
    """
    started = time.perf_counter()
    modality = resolve_modality(adata, mod)
    codes, names = batch_codes(modality, batch_key, reference)
    theta = check_finite_number("theta", theta, nonnegative=True)
    ridge = None if ridge is None else check_finite_number("ridge", ridge, positive=True)
    max_rounds = check_positive_int("max_rounds", max_rounds)
    seed = check_seed(seed)
    cells = cell_vectors(modality, cells_key, finite=True)
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
            "seed": seed,
        },
        "batches": np.asarray(names, dtype=object),
        "rounds": len(result.objective),
        "converged": bool(result.converged),
        "mean_offset": np.asarray(offsets),
    }
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, obsm={key_added: corrected})
