"""2-D maps of vectors: genes (:func:`gene_map`) and cells (:func:`cell_map`), one layout and colouring."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._core._search import valid_rows
from .._data import cell_vectors, find_record, gene_vectors, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import check_positive_int, check_seed, renamed_parameters, resolve_modality
from ._coexpression import _show_or_save

if TYPE_CHECKING:
    from matplotlib.axes import Axes

METHODS = ("umap", "tsne")
#: The ``kind`` of a stored gene-map layout's record.
LAYOUT_KIND = "gene_layout"


def _layout(vectors: np.ndarray, method: str, seed: int, n_neighbors: int, progress: bool = False) -> np.ndarray:
    if method == "umap":
        import umap

        bar = {"disable": not progress, "desc": "UMAP epochs", "leave": False}
        reducer = umap.UMAP(
            n_neighbors=min(n_neighbors, len(vectors) - 1), metric="cosine", random_state=seed, tqdm_kwds=bar
        )
        with warnings.catch_warnings():  # umap-learn notes that a seed means one thread
            warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
            return reducer.fit_transform(vectors)
    from sklearn.manifold import TSNE

    perplexity = float(min(30, max(2, (len(vectors) - 1) / 3)))
    return TSNE(metric="cosine", init="random", perplexity=perplexity, random_state=seed).fit_transform(vectors)


def _map(
    vectors: np.ndarray,
    where: str,
    method: str,
    seed: int,
    n_neighbors: int,
    ax: Any,
    most: int | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Rows with a vector (at most ``most``, drawn with ``seed``), their 2-D layout, and the axes to draw into."""
    import matplotlib.pyplot as plt

    usable = np.flatnonzero(valid_rows(vectors))
    if len(usable) < 3:
        raise ValueError(f"{where} has fewer than 3 rows with a vector; nothing to map.")
    if most is not None and len(usable) > most:
        usable = np.sort(np.random.default_rng(seed).choice(usable, most, replace=False))
    points = _layout(vectors[usable], method, seed, n_neighbors, progress)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 5.5))
    return usable, points, ax


def vectors_digest(vectors: np.ndarray) -> str:
    """A fingerprint of float64 vectors: a stored layout is reused only for the vectors it was computed from."""
    return hashlib.blake2b(np.ascontiguousarray(vectors, dtype=np.float64).tobytes(), digest_size=16).hexdigest()


def stored_gene_layout(
    adata: Any,
    vectors_key: str,
    vectors: np.ndarray,
    method: str = "umap",
    seed: int | None = None,
    n_neighbors: int | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The layout :func:`gene_map` stored for these vectors (rows, points), or ``None``.

    ``seed``/``n_neighbors`` ``None`` accept a layout drawn with any; the vectors must be the same.
    """
    key = Key.gene_layout(vectors_key, method)
    record = find_record(adata, key)
    if key not in adata.varm or record is None:
        return None
    params = record.get("params", {})
    wanted = {"vectors_key": vectors_key, "method": method, "seed": seed, "n_neighbors": n_neighbors}
    if record.get("kind") != LAYOUT_KIND or not isinstance(params, Mapping):
        return None
    if any(value is not None and params.get(name) != value for name, value in wanted.items()):
        return None
    layout = np.asarray(adata.varm[key], dtype=np.float64)
    if layout.shape != (adata.n_vars, 2) or record.get("vectors_digest") != vectors_digest(vectors):
        return None
    rows = np.flatnonzero(np.isfinite(layout).all(axis=1))
    return rows, layout[rows]


def _store_gene_layout(adata, vectors_key, vectors, rows, points, method, seed, n_neighbors) -> None:
    layout = np.full((adata.n_vars, 2), np.nan, dtype=np.float32)
    layout[rows] = points
    key = Key.gene_layout(vectors_key, method)
    params = {"vectors_key": vectors_key, "method": method, "seed": seed, "n_neighbors": n_neighbors}
    record = {"kind": LAYOUT_KIND, "params": params, "vectors_digest": vectors_digest(vectors)}
    write_result(adata, key, record, varm={key: layout})


def _check(method: str, seed: int) -> tuple[str, int]:
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; use 'umap' or 'tsne'.")
    return method, check_seed(seed)


def _draw(ax: Any, points: np.ndarray, values: pd.Series | None, size: float) -> None:
    """Scatter ``points`` coloured by ``values``: a legend for categories, a colour bar for numbers."""
    import matplotlib.pyplot as plt

    if values is None:
        ax.scatter(*points.T, s=size, color="tab:blue", linewidths=0)
    elif pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
        shown = ax.scatter(*points.T, s=size, c=values.to_numpy(float), cmap="viridis", linewidths=0)
        ax.figure.colorbar(shown, ax=ax, shrink=0.6, label=str(values.name))
    else:
        groups = values.astype("category")
        palette = plt.get_cmap("tab20")
        for i, group in enumerate(groups.cat.categories):
            mask = (groups == group).to_numpy()
            ax.scatter(*points[mask].T, s=size, color=palette(i % 20), label=str(group), linewidths=0)
        missing = groups.isna().to_numpy()
        if missing.any():
            ax.scatter(*points[missing].T, s=size * 0.7, color="lightgrey", label="none", linewidths=0)
        ax.legend(fontsize=7, markerscale=1.5, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_xticks([])
    ax.set_yticks([])


@renamed_parameters(key="vectors_key")
@shared_docs
def gene_map(
    adata: Any,
    vectors_key: str = Key.GENE_VECTORS,
    *,
    color: str | None = Key.PROGRAMS,
    method: str = "umap",
    label: Sequence[str] | None = None,
    n_neighbors: int = 15,
    seed: int = 0,
    progress: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> Axes | None:
    """2-D map (UMAP or t-SNE, cosine) of the gene vectors, coloured by program, chosen genes labelled.

    The layout is stored in ``varm['<vectors_key>_<method>']`` (genes without a vector: NaN) with its
    parameters and a fingerprint of the vectors in ``uns['gv']``; a later call with the same vectors and
    parameters, and ``geneverse explore``, reuse it instead of computing it again. A view of an AnnData
    is left as it is (nothing stored).

    Parameters
    ----------
    {doc_adata_vectors}
    vectors_key
        ``varm`` key of the vectors; genes without a vector are left out.
    color
        ``var`` column to colour by (default the programs of :func:`geneverse.tl.programs`; a numeric column
        gets a colour bar; ``None`` for one colour).
    method
        ``"umap"`` or ``"tsne"``.
    label
        Genes to write next to their points (default: the most central gene of each program).
    n_neighbors
        UMAP neighbours.
    seed
        Layout seed.
    progress
        Show a progress bar over the UMAP epochs (20,000 genes: about a minute; t-SNE shows none).
    {doc_plot}
    """
    method, seed = _check(method, seed)
    modality = resolve_modality(adata, mod)
    vectors = gene_vectors(modality, vectors_key)
    if color is not None and color not in modality.var.columns:
        raise KeyError(f"color={color!r} is not a var column; run `gv.tl.programs(adata)` or pass color=None.")
    stored = stored_gene_layout(modality, vectors_key, vectors, method, seed, n_neighbors)
    if stored is None:
        usable, points, ax = _map(vectors, f"varm[{vectors_key!r}]", method, seed, n_neighbors, ax, progress=progress)
        if not modality.is_view:  # a view would turn into a copy: the caller's object is left alone
            _store_gene_layout(modality, vectors_key, vectors, usable, points, method, seed, n_neighbors)
    else:
        import matplotlib.pyplot as plt

        usable, points = stored
        if ax is None:
            _, ax = plt.subplots(figsize=(6.5, 5.5))
    _draw(ax, points, None if color is None else modality.var[color].iloc[usable], 12)
    if label is None and color is not None:  # the most central gene of each program
        record = modality.uns.get("gv", {}).get(color, {})
        label = [str(np.asarray(genes)[0]) for genes in record.get("programs", {}).values() if len(genes)]
    position = {g: i for i, g in enumerate(modality.var_names[usable])}
    for gene in label or []:
        if gene in position:
            ax.annotate(gene, points[position[gene]], fontsize=7)
    ax.set_title(f"{vectors_key}: genes ({method.upper()})")
    return _show_or_save(ax, show, save)


@shared_docs
def cell_map(
    adata: Any,
    vectors_key: str = Key.CELL_VECTORS,
    *,
    color: str | None = None,
    method: str = "umap",
    n_neighbors: int = 15,
    max_cells: int = 20_000,
    seed: int = 0,
    progress: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> Axes | None:
    """2-D map (UMAP or t-SNE, cosine) of the cell vectors of :func:`geneverse.tl.cell_embed`, coloured by ``obs``.

    The layout is computed for the plot only: nothing is written to ``adata`` (for a stored UMAP, run
    ``sc.pp.neighbors(adata, use_rep=vectors_key)`` and ``sc.tl.umap``).

    Parameters
    ----------
    {doc_adata}
    vectors_key
        ``obsm`` key of the cell vectors; cells without a vector (no expressed gene with a vector) are left out.
    color
        ``obs`` column to colour by: categories get a legend, numbers (a program score) a colour bar;
        ``None`` for one colour.
    method
        ``"umap"`` or ``"tsne"``.
    n_neighbors
        UMAP neighbours.
    max_cells
        Map at most this many cells, drawn at random (with ``seed``) when there are more.
    seed
        Layout and subsampling seed.
    progress
        Show a progress bar over the UMAP epochs (t-SNE shows none).
    {doc_plot}
    """
    method, seed = _check(method, seed)
    max_cells = check_positive_int("max_cells", max_cells)
    modality = resolve_modality(adata, mod)
    vectors = cell_vectors(modality, vectors_key)
    if color is not None and color not in modality.obs.columns:
        raise KeyError(f"color={color!r} is not an obs column; obs columns: {list(modality.obs.columns)}.")
    usable, points, ax = _map(
        vectors, f"obsm[{vectors_key!r}]", method, seed, n_neighbors, ax, max_cells, progress=progress
    )
    _draw(ax, points, None if color is None else modality.obs[color].iloc[usable], max(2.0, 12 - len(usable) / 500))
    shown = f"{len(usable)} of {modality.n_obs} cells" if len(usable) < modality.n_obs else "cells"
    ax.set_title(f"{vectors_key}: {shown} ({method.upper()})")
    return _show_or_save(ax, show, save)
