"""Open an AnnData (or an .h5ad file) in napari with the geneverse widget docked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._docs import shared_docs
from .._utils import resolve_modality
from ._data import DEFAULT_SCORES_KEY
from ._layers import layer_data

if TYPE_CHECKING:
    import napari

#: Name of the dock widget :func:`view` adds.
WIDGET_NAME = "geneverse programs"


def _load(data: Any, mod: str | None, backed: bool = False) -> tuple[Any, str, str | None]:
    """The AnnData (modality) of ``data`` or of the file it names; ``backed``: leave X in the file, read-only."""
    if isinstance(data, str | Path):
        import anndata as ad

        path = Path(data)
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {path}")
        if path.suffix == ".h5mu":
            import mudata as md

            return resolve_modality(md.read_h5mu(path, backed=backed), mod), path.stem, str(path)
        return resolve_modality(ad.read_h5ad(path, backed="r" if backed else None), mod), path.stem, str(path)
    return resolve_modality(data, mod), "cells", None


@shared_docs
def view(
    data: Any,
    *,
    library_id: str | None = None,
    spatial_key: str = "spatial",
    scores_key: str = DEFAULT_SCORES_KEY,
    mod: str | None = None,
    viewer: napari.viewer.Viewer | None = None,
    show: bool = True,
) -> napari.viewer.Viewer:
    """Show cells on their tissue in napari, with the geneverse program widget docked.

    The data are checked before any window opens, so a file without spatial coordinates raises
    instead of opening an empty viewer.

    Parameters
    ----------
    data
        AnnData, MuData (with ``mod``), or the path of an ``.h5ad``/``.h5mu`` file.
    library_id
        Library of ``uns['spatial']`` whose tissue image to show (default: the only or first one).
    spatial_key
        ``obsm`` key of the cell coordinates.
    scores_key
        ``obsm`` key of the program scores (``gv.tl.score_programs``' ``key_added``).
    {doc_mod}
    viewer
        Viewer to add to (default: a new one).
    show
        Show the new viewer's window.

    Returns
    -------
    The viewer; the widget is ``viewer.window.dock_widgets["geneverse programs"]``.
    """
    adata, name, path = _load(data, mod)
    layers = layer_data(
        adata, name=name, library_id=library_id, spatial_key=spatial_key, scores_key=scores_key, path=path
    )
    import napari

    from ._widget import ProgramWidget

    viewer = viewer if viewer is not None else napari.Viewer(show=show)
    for layer, kwargs, kind in layers:
        getattr(viewer, f"add_{kind}")(layer, **kwargs)
    viewer.window.add_dock_widget(ProgramWidget(viewer), name=WIDGET_NAME, area="right")
    return viewer
