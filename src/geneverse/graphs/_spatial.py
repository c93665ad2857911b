"""Spatial neighbour graphs through squidpy."""

from __future__ import annotations

from typing import Any

from .._docs import shared_docs
from .._utils import resolve_modality


@shared_docs
def spatial_graph(adata: Any, *, mod: str | None = None, **kwargs: Any) -> None:
    """Build the spatial neighbour graph with ``squidpy.gr.spatial_neighbors`` (``obsp['spatial_connectivities']``).

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with coordinates in ``obsm['spatial']``.
    {doc_mod}
    **kwargs
        Passed to ``squidpy.gr.spatial_neighbors`` (e.g. ``coord_type="generic"``, ``n_neighs=6``,
        ``delaunay=True``).

    Returns
    -------
    ``None``; squidpy writes ``obsp['spatial_connectivities']`` and ``obsp['spatial_distances']``.
    """
    try:
        import squidpy as sq
    except ImportError as error:
        raise ImportError(
            "gv.graphs.spatial_graph needs squidpy: `pip install 'geneverse[spatial]'` (squidpy>=1.8.2)."
        ) from error
    target = resolve_modality(adata, mod)
    if "spatial" not in target.obsm and "spatial_key" not in kwargs:
        raise KeyError("No obsm['spatial'] coordinates; add them or pass spatial_key=<obsm key>.")
    sq.gr.spatial_neighbors(target, **kwargs)
