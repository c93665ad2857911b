"""Cell graphs for graph-aware targets.

Reserved namespace: the clonotype and spatial graph builders (``build_clonotype_graph``,
``spatial_graph``) for the ``graph_xcorr`` target are not implemented yet; until then, pass a
cells x cells matrix from squidpy (``obsp['spatial_connectivities']``) to your own target.
"""

from __future__ import annotations

__all__: list[str] = []
