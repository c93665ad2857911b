"""Plots of cell-level results: annotation probabilities, confusion with known labels, batch mixing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._data import cell_vectors
from .._docs import shared_docs
from .._keys import Key
from .._utils import check_positive_int, resolve_modality
from ._coexpression import _show_or_save
from ._maps import _check, _draw, _map

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _panels(n: int, ncols: int, size: float = 3.4) -> list[Axes]:
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.6, size * nrows), squeeze=False)
    for extra in axes.ravel()[n:]:
        extra.set_visible(False)
    fig.tight_layout()
    return list(axes.ravel()[:n])


def _finish(axes: list[Axes], show: bool | None, save: str | Path | None) -> list[Axes] | None:
    return None if _show_or_save(axes[0], show, save) is None else axes


def _basis(modality: Any, basis: str) -> np.ndarray:
    """2-D coordinates from ``obsm[basis]`` (also ``"umap"`` for ``X_umap``), first two columns."""
    key = basis if basis in modality.obsm else f"X_{basis}"
    if key not in modality.obsm:
        raise KeyError(
            f"No obsm[{basis!r}] (or X_{basis}) to draw on; compute it (e.g. `sc.tl.umap`) or use 'spatial'. "
            f"obsm keys: {list(modality.obsm.keys())}."
        )
    points = np.asarray(modality.obsm[key], dtype=np.float64)
    if points.ndim != 2 or points.shape[1] < 2:
        raise ValueError(f"obsm[{key!r}] needs at least two columns of coordinates.")
    return points[:, :2]


@shared_docs
def cell_type_probabilities(
    adata: Any,
    key: str = Key.CELL_TYPE,
    *,
    basis: str = "umap",
    types: Sequence[str] | None = None,
    ncols: int = 4,
    size: float | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> list[Axes] | None:
    """One panel per cell type: each cell coloured by its probability of that type (:func:`geneverse.tl.annotate`).

    Parameters
    ----------
    {doc_adata}
    key
        The ``key_added`` of :func:`~geneverse.tl.annotate`; reads ``obsm[key + "_probabilities"]``.
    basis
        ``obsm`` coordinates to draw on: ``"umap"`` (``X_umap``), ``"spatial"`` (tissue) or any 2-D key.
    types
        Types to draw (default all).
    ncols
        Panels per row.
    size
        Point size (default from the number of cells).
    {doc_panels}
    """
    modality = resolve_modality(adata, mod)
    slot = f"{key}{Key.PROBABILITIES_SUFFIX}"
    if slot not in modality.obsm:
        raise KeyError(f"No obsm[{slot!r}]; run `gv.tl.annotate(adata, markers, key_added={key!r})` first.")
    probabilities = pd.DataFrame(modality.obsm[slot])
    types = list(probabilities.columns) if types is None else list(types)
    unknown = [t for t in types if t not in probabilities.columns]
    if unknown:
        raise KeyError(f"Types {unknown} are not in obsm[{slot!r}]; types: {list(probabilities.columns)}.")
    points = _basis(modality, basis)
    size = max(2.0, 30 - modality.n_obs / 200) if size is None else size
    axes = _panels(len(types), ncols)
    for ax, cell_type in zip(axes, types, strict=True):
        shown = ax.scatter(
            *points.T, c=probabilities[cell_type].to_numpy(), s=size, cmap="viridis", vmin=0, vmax=1, linewidths=0
        )
        ax.set_title(str(cell_type), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        if basis == "spatial":
            ax.set_aspect("equal")
            ax.invert_yaxis()  # image coordinates, as squidpy draws tissue
    axes[0].figure.colorbar(shown, ax=axes, shrink=0.6, label="probability")
    return _finish(axes, show, save)


@shared_docs
def confusion(
    adata: Any,
    truth: str,
    key: str = Key.CELL_TYPE,
    *,
    normalize: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> Axes | None:
    """Heatmap of known labels (rows) against assigned cell types (columns), with counts or row shares.

    Parameters
    ----------
    {doc_adata}
    truth
        ``obs`` column of the known labels.
    key
        ``obs`` column of the assigned types (default :func:`~geneverse.tl.annotate`'s).
    normalize
        Show each row's shares (each known label's cells sum to 1) instead of counts.
    {doc_plot}
    """
    import matplotlib.pyplot as plt

    modality = resolve_modality(adata, mod)
    for column in (truth, key):
        if column not in modality.obs:
            raise KeyError(f"No obs column {column!r}; obs columns: {list(modality.obs.columns)}.")
    table = pd.crosstab(modality.obs[truth].astype(str), modality.obs[key].astype(str))
    shown = table.div(table.sum(axis=1), axis=0) if normalize else table
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 0.55 * shown.shape[1], 1.0 + 0.45 * shown.shape[0]))
    image = ax.imshow(shown.to_numpy(float), cmap="Blues", vmin=0, vmax=1 if normalize else None, aspect="auto")
    ax.set_xticks(range(shown.shape[1]), shown.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(shown.shape[0]), shown.index, fontsize=8)
    limit = shown.to_numpy(float).max()
    for (i, j), value in np.ndenumerate(shown.to_numpy(float)):
        if value > 0:
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color="white" if value > limit / 2 else "black")
    ax.set_xlabel(key)
    ax.set_ylabel(truth)
    ax.figure.colorbar(image, ax=ax, shrink=0.7, label="share of row" if normalize else "cells")
    accuracy = float(np.mean(modality.obs[truth].astype(str).to_numpy() == modality.obs[key].astype(str).to_numpy()))
    ax.set_title(f"{key} vs {truth} (same name: {accuracy:.0%})", fontsize=9)
    return _show_or_save(ax, show, save)


@shared_docs
def batch_mixing(
    adata: Any,
    batch_key: str,
    keys: Sequence[str] = (Key.CELL_VECTORS, Key.CORRECTED),
    *,
    label_key: str | None = None,
    method: str = "umap",
    n_neighbors: int = 15,
    max_cells: int = 20_000,
    seed: int = 0,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> list[Axes] | None:
    """Cell maps before and after batch correction, coloured by batch, with the mixing score in each title.

    The score is :func:`geneverse.bench.batch_mixing` (cross-batch neighbours relative to perfect
    mixing, 15 neighbours; over the types shared by batches when ``label_key`` is given). With
    ``label_key``, a second row colours the same maps by cell type (what the correction must keep).

    Parameters
    ----------
    {doc_adata}
    batch_key
        ``obs`` column of the batches.
    keys
        ``obsm`` keys of the cell vectors to compare (default: :func:`~geneverse.tl.cell_embed`'s
        and :func:`~geneverse.tl.batch_correct`'s).
    label_key
        ``obs`` column of cell types.
    method
        ``"umap"`` or ``"tsne"``.
    n_neighbors
        UMAP neighbours.
    max_cells
        Map at most this many cells (drawn with ``seed``); the score uses all cells.
    seed
        Layout and subsampling seed.
    {doc_panels}
    """
    from ..bench import batch_mixing as mixing

    method, seed = _check(method, seed)
    max_cells = check_positive_int("max_cells", max_cells)
    modality = resolve_modality(adata, mod)
    for column in (batch_key, label_key):
        if column is not None and column not in modality.obs:
            raise KeyError(f"No obs column {column!r}; obs columns: {list(modality.obs.columns)}.")
    keys = [keys] if isinstance(keys, str) else list(keys)
    if Key.CORRECTED in keys and Key.CORRECTED not in modality.obsm:
        raise KeyError(f"No obsm[{Key.CORRECTED!r}]; run `gv.tl.batch_correct(adata, {batch_key!r})` first.")
    batches = modality.obs[batch_key]
    labels = None if label_key is None else modality.obs[label_key]
    vectors = {key: cell_vectors(modality, key, finite=True) for key in keys}
    # every score before any figure, so that a failure leaves no figure behind
    scores = {
        key: mixing(vectors[key], batches.to_numpy(), None if labels is None else labels.to_numpy()) for key in keys
    }
    rows = 1 if labels is None else 2
    axes = _panels(len(keys) * rows, len(keys), size=4.0)
    for column, key in enumerate(keys):
        score = scores[key]
        shown, points, _ = _map(vectors[key], f"obsm[{key!r}]", method, seed, n_neighbors, axes[column], max_cells)
        _draw(axes[column], points, batches.iloc[shown], 6)
        axes[column].set_title(f"{key}: mixing {score:.2f}", fontsize=9)
        if labels is not None:
            _draw(axes[len(keys) + column], points, labels.iloc[shown], 6)
            axes[len(keys) + column].set_title(f"{key}: {label_key}", fontsize=9)
    axes[0].figure.tight_layout()  # again, now that the legends are drawn
    return _finish(axes, show, save)
