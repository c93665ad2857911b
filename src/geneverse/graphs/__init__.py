"""Cell graphs for the ``graph_xcorr`` target: clonotype graphs (scirpy) and spatial graphs (squidpy)."""

from __future__ import annotations

from ._clonotype import build_clonotype_graph
from ._spatial import spatial_graph

__all__ = ["build_clonotype_graph", "spatial_graph"]
