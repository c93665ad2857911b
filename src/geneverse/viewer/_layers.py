"""napari layer data for an AnnData on tissue, and the npe2 reader for ``.h5ad`` files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from anndata import AnnData

from ._data import DEFAULT_SCORES_KEY, contrast_limits, program_values, score_programs_available, spatial_layout

#: ``Points.metadata`` key under which the AnnData travels with its layer.
ADATA_KEY = "adata"

#: Feature column that holds the values being shown.
OVERLAY_FEATURE = "gv_overlay"

DEFAULT_COLORMAP = "viridis"

LayerData = tuple[Any, dict, str]


def layer_data(
    adata: AnnData,
    *,
    name: str = "cells",
    library_id: str | None = None,
    spatial_key: str = "spatial",
    scores_key: str = DEFAULT_SCORES_KEY,
    path: str | None = None,
) -> list[LayerData]:
    """Napari layer data (image first, then points) showing ``adata``'s cells on its tissue.

    Parameters
    ----------
    adata
        AnnData with ``obsm[spatial_key]`` and, optionally, a Visium-style image in ``uns['spatial']``.
    name
        Name of the points layer (the image is named ``"{name} tissue"``).
    library_id
        Library of ``uns['spatial']`` to show.
    spatial_key
        ``obsm`` key of the coordinates.
    scores_key
        ``obsm`` key of program scores; the points start coloured by its first program.
    path
        File the AnnData came from (kept in the layer metadata).

    Returns
    -------
    ``[(data, kwargs, layer_type), ...]`` as napari readers return them; the points layer carries
    the AnnData in ``metadata['adata']`` and the program scores as features.
    """
    layout = spatial_layout(adata, library_id=library_id, spatial_key=spatial_key)
    layers: list[LayerData] = []
    if layout.image is not None:
        rgb = layout.image.ndim == 3 and layout.image.shape[-1] in (3, 4)
        layers.append((layout.image, {"name": f"{name} tissue", "rgb": rgb}, "image"))
    programs = score_programs_available(adata, scores_key)
    features = pd.DataFrame(index=pd.RangeIndex(len(layout.cells)))
    for program in programs:
        features[program] = program_values(adata, program, scores_key)[layout.cells]
    points_kwargs: dict[str, Any] = {
        "name": name,
        "size": layout.point_size,
        "border_width": 0,
        "features": features,
        "metadata": {
            ADATA_KEY: adata,
            "cells": layout.cells,
            "library_id": layout.library_id,
            "spatial_key": spatial_key,
            "scores_key": scores_key,
            "path": path,
        },
    }
    if programs:
        first = features[programs[0]].to_numpy()
        features[OVERLAY_FEATURE] = first
        points_kwargs.update(
            face_color=OVERLAY_FEATURE,
            face_colormap=DEFAULT_COLORMAP,
            face_contrast_limits=contrast_limits(first),
        )
        points_kwargs["metadata"]["shown"] = ("program", programs[0])
    else:
        points_kwargs["face_color"] = "#d9d9d9"
    layers.append((layout.coordinates, points_kwargs, "points"))
    return layers


def _has_spatial_coordinates(path: str, spatial_key: str = "spatial") -> bool:
    """Whether the .h5ad file holds ``obsm[spatial_key]``, read without loading the data."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "obsm" in handle and spatial_key in handle["obsm"]
    except OSError:
        return False


def read_spatial_h5ad(path: str | Path) -> list[LayerData]:
    """Read an ``.h5ad`` file with spatial coordinates into napari layer data.

    Parameters
    ----------
    path
        The ``.h5ad`` file.

    Returns
    -------
    The layer data of :func:`layer_data`, the points layer named after the file.
    """
    import anndata as ad

    path = str(path)
    adata = ad.read_h5ad(path)
    return layer_data(adata, name=Path(path).stem, path=path)


def napari_get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """npe2 reader hook: claim ``.h5ad`` files that carry ``obsm['spatial']``.

    Other files (or several at once) are left to other readers; an ``.h5ad`` without coordinates
    is not claimed, since there is nothing to place on a tissue (the widget explains why when such
    a file is opened through it).

    Parameters
    ----------
    path
        What napari asks about: a path or a list of paths.

    Returns
    -------
    A function returning layer data, or ``None`` for files this plugin does not read.
    """
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    path = str(path)
    if not path.endswith(".h5ad") or not _has_spatial_coordinates(path):
        return None

    def read(target: str | list[str]) -> list[LayerData]:
        return read_spatial_h5ad(target[0] if isinstance(target, list | tuple) else target)

    return read
