"""Gene network drawing: genes laid out by their vectors, edges of :func:`geneverse.tl.gene_network`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from .._data import gene_names
from .._docs import shared_docs
from .._keys import Key
from .._utils import check_seed, resolve_modality
from ..io._network import network_graph
from ._coexpression import _show_or_save
from ._maps import _draw

if TYPE_CHECKING:
    from matplotlib.axes import Axes

LAYOUTS = ("spring", "umap")
#: Most genes drawn with the force layout when ``layout=None``.
MAX_SPRING = 1000


def _positions(graph: sp.csr_matrix, vectors: np.ndarray | None, layout: str, seed: int) -> np.ndarray:
    """2-D positions of the graph's nodes: a force layout of the graph, or UMAP of their vectors."""
    if layout == "umap":
        from ._maps import _layout

        return _layout(vectors, "umap", seed, 15)
    import networkx as nx

    positions = nx.spring_layout(nx.from_scipy_sparse_array(graph), seed=seed, weight="weight")
    return np.array([positions[i] for i in range(graph.shape[0])])


@shared_docs
def gene_network(
    adata: Any,
    key: str = Key.NETWORK,
    *,
    genes: Sequence[str] | None = None,
    color: str | None = Key.PROGRAMS,
    layout: str | None = None,
    vectors_key: str = Key.GENE_VECTORS,
    label: Sequence[str] | bool | None = None,
    gene_symbols: str | None = None,
    seed: int = 0,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> Axes | None:
    """Draw the gene network of :func:`geneverse.tl.gene_network`, genes coloured by program.

    Parameters
    ----------
    {doc_adata}
    key
        The ``key_added`` of :func:`~geneverse.tl.gene_network`.
    genes
        Draw only these genes and the edges among them (e.g. one program, or a gene and its
        neighbours); by default every gene with an edge.
    color
        ``var`` column to colour genes by (default the programs, when computed; ``None`` for one colour).
    layout
        ``"spring"`` (force-directed on the graph, networkx) or ``"umap"`` (of the gene vectors, as
        :func:`gene_map`); default ``"spring"`` up to 1,000 genes drawn, ``"umap"`` beyond.
    vectors_key
        ``varm`` key of the vectors, for ``layout="umap"``.
    label
        Genes to name on the plot; ``True`` names all (sensible for a few dozen), default none
        beyond 40 genes and all below.
    {doc_gene_symbols}
    seed
        Layout seed.
    {doc_plot}
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"Unknown layout {layout!r}; use one of {LAYOUTS}.")
    seed = check_seed(seed)
    modality = resolve_modality(adata, mod)
    graph = network_graph(modality, key)
    names = np.asarray(gene_names(modality, gene_symbols), dtype=object)
    if color == Key.PROGRAMS and color not in modality.var.columns:
        color = None  # the default: programs only when they were computed
    if color is not None and color not in modality.var.columns:
        raise KeyError(f"color={color!r} is not a var column; var columns: {list(modality.var.columns)}.")
    if genes is None:
        shown = np.flatnonzero(np.diff(graph.indptr) > 0)
    else:
        position = {name: i for i, name in enumerate(names)}
        unknown = [g for g in genes if g not in position]
        if unknown:
            raise KeyError(f"Genes {unknown[:10]} are not in the data (gene_symbols={gene_symbols!r}).")
        shown = np.unique([position[g] for g in genes])
    if len(shown) < 2:
        raise ValueError("Fewer than 2 genes to draw; the network has no edges among the chosen genes.")
    sub = graph[shown][:, shown].tocsr()
    if layout is None:  # a force layout grows with genes squared: UMAP of the vectors beyond a thousand
        layout = "spring" if len(shown) <= MAX_SPRING else "umap"
    vectors = None
    if layout == "umap":
        from .._data import gene_vectors

        vectors = gene_vectors(modality, vectors_key)[shown]
    points = _positions(sub, vectors, layout, seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5.5))
    upper = sp.triu(sub, k=1).tocoo()
    if upper.nnz:
        weights = upper.data / upper.data.max()
        segments = np.stack([points[upper.row], points[upper.col]], axis=1)
        ax.add_collection(LineCollection(segments, colors="grey", linewidths=0.3 + weights, alpha=0.35, zorder=0))
    _draw(ax, points, None if color is None else modality.var[color].iloc[shown], 14 if len(shown) > 200 else 30)
    if label is None:
        label = len(shown) <= 40
    chosen = names[shown] if label is True else ([] if label is False else list(label))
    at = {name: i for i, name in enumerate(names[shown])}
    for gene in chosen:
        if gene in at:
            ax.annotate(str(gene), points[at[gene]], fontsize=7)
    ax.set_title(f"{key}: {len(shown)} genes, {upper.nnz} edges")
    return _show_or_save(ax, show, save)
