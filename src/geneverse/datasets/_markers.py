"""Marker genes shipped with geneverse."""

from __future__ import annotations

import json
from importlib import resources


def pbmc_markers(with_sources: bool = False) -> dict:
    """Literature marker genes of seven blood cell types (CD4 T, CD8 T, NK, B, Monocyte, DC, HSPC).

    Chosen among the 765 genes of :func:`pbmc68k` (which lacks CD14, CD19, CD34, KLRD1 and CD1C),
    from the literature, not fitted to any labels; the demo annotates pbmc68k with them.

    Parameters
    ----------
    with_sources
        Return ``{"markers": ..., "sources": ...}`` (type -> citation) instead of the markers alone.

    Returns
    -------
    Dict cell type -> marker genes (input of :func:`geneverse.tl.annotate`).
    """
    content = json.loads(resources.files("geneverse.datasets").joinpath("data/pbmc_markers.json").read_text())
    if with_sources:
        return {"markers": content["markers"], "sources": content["sources"]}
    return content["markers"]
