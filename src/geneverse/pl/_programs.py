"""Plots of programs: similarity heatmap of their genes, program scores on cells and tissue."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._core._search import unit_rows, valid_rows
from .._data import gene_vectors, program_scores
from .._docs import shared_docs
from .._keys import Key
from .._utils import renamed_parameters, resolve_modality
from ._coexpression import _show_or_save

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@renamed_parameters(key="vectors_key")
@shared_docs
def similarity_heatmap(
    adata: Any,
    genes: Sequence[str] | None = None,
    *,
    vectors_key: str = Key.GENE_VECTORS,
    programs: Sequence[str] | None = None,
    program_key: str = Key.PROGRAMS,
    cmap: str = "RdBu_r",
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> Axes | None:
    """Cosine similarity of gene vectors for a gene list, or for the genes of chosen programs.

    Parameters
    ----------
    {doc_adata_vectors}
    genes
        Genes to show, in order.
    {doc_vectors_key}
    programs
        Instead of ``genes``: program names whose genes are shown, grouped by program (all
        programs when both are ``None``, at most 100 genes).
    program_key
        The ``var`` column written by :func:`geneverse.tl.programs`.
    cmap
        Colormap (symmetric around 0).
    {doc_plot}
    """
    import matplotlib.pyplot as plt

    modality = resolve_modality(adata, mod)
    vectors = gene_vectors(modality, vectors_key)
    if genes is None:
        if program_key not in modality.var.columns:
            raise KeyError(f"No var[{program_key!r}]; pass genes= or run `gv.tl.programs(adata)` first.")
        column = modality.var[program_key]
        chosen = list(column.cat.categories) if programs is None else list(programs)
        unknown = [p for p in chosen if p not in column.cat.categories]
        if unknown:
            raise KeyError(f"Unknown programs {unknown}; available: {list(column.cat.categories)}.")
        genes = [g for p in chosen for g in modality.var_names[(column == p).to_numpy()]][:100]
    missing = [g for g in genes if g not in modality.var_names]
    if missing:
        raise KeyError(f"Genes not in var_names: {missing[:10]}.")
    rows = modality.var_names.get_indexer(list(genes))
    if not valid_rows(vectors[rows]).all():
        raise ValueError("Some chosen genes have no vector (NaN rows); leave them out.")
    unit = unit_rows(vectors[rows])
    similarity = unit @ unit.T
    if ax is None:
        size = max(4.0, 0.16 * len(rows) + 2)
        _, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(similarity, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(rows)), list(genes), rotation=90, fontsize=6)
    ax.set_yticks(range(len(rows)), list(genes), fontsize=6)
    ax.set_title(f"cosine similarity ({vectors_key})")
    ax.figure.colorbar(image, ax=ax, shrink=0.7, label="cosine")
    return _show_or_save(ax, show, save)


@renamed_parameters(key="scores_key")
@shared_docs
def programs(
    adata: Any,
    names: Sequence[str] | None = None,
    *,
    scores_key: str = Key.SCORES,
    basis: str = "X_umap",
    spatial_key: str = "spatial",
    cmap: str = "viridis",
    ncols: int = 4,
    ax: Axes | Sequence[Axes] | np.ndarray | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> np.ndarray | None:
    """Program scores on a cell embedding and, when ``obsm[spatial_key]`` exists, on the tissue.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with scores from :func:`geneverse.tl.score_programs`.
    names
        Programs to show (default: all, at most 12).
    scores_key
        ``obsm`` key of the scores.
    basis
        ``obsm`` key of the 2-D cell embedding (``sc.tl.umap`` writes ``X_umap``).
    spatial_key
        ``obsm`` key of tissue coordinates; a second row of panels is drawn when present.
    cmap
        Colormap.
    ncols
        Panels per row (when ``ax`` is not given).
    ax
        Axes to draw into, one per panel: ``len(names)`` for one basis, twice that with the tissue
        (embedding panels first); a new figure otherwise.
    {doc_show}
    {doc_save}
    {doc_mod}

    Returns
    -------
    Array of Axes (one per panel: rows per basis, the embedding's first), or ``None`` when shown.
    """
    import matplotlib.pyplot as plt

    modality = resolve_modality(adata, mod)
    scores = program_scores(modality, scores_key)
    names = list(scores.columns[:12]) if names is None else list(names)
    unknown = [n for n in names if n not in scores.columns]
    if unknown:
        raise KeyError(f"Unknown programs {unknown}; available: {list(scores.columns)}.")
    bases = [b for b in (basis, spatial_key) if b in modality.obsm]
    if basis not in modality.obsm and spatial_key not in modality.obsm:
        raise KeyError(f"Neither obsm[{basis!r}] nor obsm[{spatial_key!r}]; run `sc.tl.umap(adata)` first.")
    if ax is None:
        ncols = max(1, min(ncols, len(names)))
        rows_per_basis = -(-len(names) // ncols)
        fig, grid = plt.subplots(
            rows_per_basis * len(bases), ncols, figsize=(3.2 * ncols, 3.0 * rows_per_basis * len(bases)), squeeze=False
        )
        panels = [
            grid[b * rows_per_basis + i // ncols, i % ncols] for b in range(len(bases)) for i in range(len(names))
        ]
        for b in range(len(bases)):  # hide the unused panels of each basis' block of rows
            for unused in grid[b * rows_per_basis : (b + 1) * rows_per_basis].ravel()[len(names) :]:
                unused.set_visible(False)
        axes = grid
    else:
        panels = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(panels) != len(names) * len(bases):
            raise ValueError(
                f"ax holds {len(panels)} Axes; {len(names)} programs on {len(bases)} bases ({bases}) need "
                f"{len(names) * len(bases)}."
            )
        fig = panels[0].figure
        axes = np.asarray(panels, dtype=object).reshape(len(bases), len(names))
    for b, name_of_basis in enumerate(bases):
        coordinates = np.asarray(modality.obsm[name_of_basis])[:, :2]
        for i, name in enumerate(names):
            panel = panels[b * len(names) + i]
            points = panel.scatter(*coordinates.T, c=scores[name].to_numpy(), s=6, cmap=cmap, linewidths=0)
            if name_of_basis == spatial_key:
                panel.set_aspect("equal")
                panel.invert_yaxis()  # image coordinates, as squidpy draws them
            panel.set_title(f"{name} ({'tissue' if name_of_basis == spatial_key else name_of_basis})", fontsize=9)
            panel.set_xticks([])
            panel.set_yticks([])
            fig.colorbar(points, ax=panel, shrink=0.7)
    if ax is None:
        fig.tight_layout()
    result = _show_or_save(axes[0, 0], show, save)
    return None if result is None else axes
