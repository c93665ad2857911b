"""``gv.pl.coexpression``: heatmap of a co-expression matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._data import coexpression as get_coexpression
from .._docs import shared_docs
from .._files import save_figure
from .._keys import Key
from .._utils import check_positive_int, renamed_parameters, resolve_modality

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def _show_or_save(ax, show: bool | None, save: str | Path | None):
    import matplotlib.pyplot as plt

    if save is not None:
        save_figure(ax.figure, save, dpi=150, bbox_inches="tight")
    if show is None:
        show = plt.isinteractive()
    if show:
        plt.show()
        return None
    return ax


def _strongest_genes(values: np.ndarray, n_genes: int) -> np.ndarray:
    """Genes with the largest total absolute off-diagonal co-expression."""
    strength = np.abs(values).sum(axis=1) - np.abs(np.diag(values))
    return np.sort(np.argsort(-strength, kind="stable")[:n_genes])


def _cluster_order(values: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage clustering on 1 - scaled similarity, so blocks show up."""
    if len(values) < 3:
        return np.arange(len(values))
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    scale = np.abs(values).max() or 1.0
    distance = 1.0 - values / scale
    distance = (distance + distance.T) / 2
    np.fill_diagonal(distance, 0.0)
    return leaves_list(linkage(squareform(np.clip(distance, 0, None), checks=False), method="average"))


@renamed_parameters(key="coexpression_key")
@shared_docs
def coexpression(
    adata: Any,
    coexpression_key: str = Key.COEXPRESSION,
    *,
    genes: Sequence[str] | None = None,
    n_genes: int = 40,
    cluster: bool = True,
    cmap: str = "RdBu_r",
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> Axes | None:
    """Heatmap of a co-expression matrix for chosen or the most connected genes.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) holding ``varp[coexpression_key]`` from :func:`geneverse.tl.coexpression`.
    coexpression_key
        The co-expression key.
    genes
        Genes to show; default: the ``n_genes`` with the largest total absolute co-expression.
    n_genes
        How many genes to pick when ``genes`` is not given.
    cluster
        Order genes by hierarchical clustering so co-expressed blocks sit together.
    cmap
        Colormap; the colour scale is symmetric around 0 for signed targets.
    {doc_plot}
    """
    import matplotlib.pyplot as plt

    frame = get_coexpression(adata, coexpression_key, mod=mod)
    if genes is not None:
        missing = [g for g in genes if g not in frame.index]
        if missing:
            raise KeyError(f"Genes not in the {coexpression_key!r} matrix: {missing[:10]}.")
        frame = frame.loc[list(genes), list(genes)]
    else:
        chosen = _strongest_genes(frame.to_numpy(), check_positive_int("n_genes", n_genes))
        frame = frame.iloc[chosen, chosen]
    values = frame.to_numpy().copy()
    off_diagonal = values[~np.eye(len(values), dtype=bool)]
    limit = float(np.abs(off_diagonal).max()) if off_diagonal.size else 1.0
    if cluster:
        order = _cluster_order(values)
        frame = frame.iloc[order, order]
        values = frame.to_numpy()
    if ax is None:
        size = max(4.0, 0.18 * len(frame) + 2)
        _, ax = plt.subplots(figsize=(size + 1, size))
    signed = bool((off_diagonal < 0).any())
    image = ax.imshow(
        values,
        cmap=cmap if signed else "viridis",
        vmin=-limit if signed else 0,
        vmax=limit or 1.0,
        interpolation="nearest",
    )
    ax.set_xticks(range(len(frame)), frame.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(frame)), frame.index, fontsize=7)
    record = resolve_modality(adata, mod).uns.get("gv", {}).get(coexpression_key, {})
    ax.set_title(f"{coexpression_key} ({record.get('target', 'co-expression')})")
    ax.figure.colorbar(image, ax=ax, shrink=0.7, label=str(record.get("target", coexpression_key)))
    return _show_or_save(ax, show, save)
