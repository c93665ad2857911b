"""Viewers: gene embeddings in the browser (``explore``) and cells on tissue in napari (``view``).

:func:`explore` serves a local web page (werkzeug) and needs neither napari nor Qt.

In napari: a reader and a dock widget that overlays program and gene scores. The napari plugin
(``napari.yaml``, installed with ``pip install 'geneverse[napari]'``) contributes the ``.h5ad`` reader
and the widget. Functions here that do not draw (layouts, values) need neither napari nor Qt;
:class:`ProgramWidget` and :func:`view` import them when used.
"""

from __future__ import annotations

from typing import Any

from ._data import SpatialLayout, gene_values, program_values, spatial_layout, top_genes
from ._explorer import Explorer
from ._layers import layer_data, napari_get_reader, read_spatial_h5ad
from ._server import ExplorerServer, explore
from ._view import view

__all__ = [
    "Explorer",
    "ExplorerServer",
    "ProgramWidget",
    "SpatialLayout",
    "explore",
    "gene_values",
    "layer_data",
    "napari_get_reader",
    "program_values",
    "read_spatial_h5ad",
    "spatial_layout",
    "top_genes",
    "view",
]


def __getattr__(name: str) -> Any:
    # the widget needs magicgui and Qt: import it only when asked for
    if name == "ProgramWidget":
        try:
            from ._widget import ProgramWidget
        except ImportError as error:
            raise ImportError(
                "The geneverse napari widget needs napari, magicgui and a Qt binding: pip install 'geneverse[napari]'."
            ) from error
        return ProgramWidget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
