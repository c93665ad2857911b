"""What the napari views show, computed without Qt: cell positions on the tissue, images, overlays."""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._docs import shared_docs
from .._keys import Key
from .._utils import UNS_KEY, get_expression

logger = logging.getLogger("geneverse")

#: Where :func:`geneverse.tl.score_programs` writes by default.
DEFAULT_SCORES_KEY = Key.SCORES

_IMAGE_RESOLUTIONS = ("hires", "lowres")


@dataclass
class SpatialLayout:
    """Cells placed on the tissue, in napari's (row, column) order and the image's pixels.

    Attributes
    ----------
    coordinates
        Cells x 2, (row, column) = (y, x) in the pixels of ``image`` (or of ``obsm['spatial']``
        when there is no image).
    cells
        Positions in ``obs`` of the cells shown (all cells, or one library's).
    point_size
        Diameter of a cell's point in the same pixels.
    image
        The tissue image (rows x columns [x 3 or 4]) or ``None``.
    resolution
        ``"hires"``/``"lowres"`` of the image shown, or ``None``.
    library_id
        The ``uns['spatial']`` library shown, or ``None``.
    """

    coordinates: np.ndarray
    cells: np.ndarray
    point_size: float
    image: np.ndarray | None = None
    resolution: str | None = None
    library_id: str | None = None


def _coordinates(adata: AnnData, spatial_key: str) -> np.ndarray:
    if spatial_key not in adata.obsm:
        raise ValueError(
            f"No spatial coordinates: adata.obsm[{spatial_key!r}] is missing. Store each cell's (x, y) there "
            "(squidpy.read.visium and scanpy.read_visium do), or pass spatial_key= naming the obsm entry."
        )
    xy = np.asarray(adata.obsm[spatial_key], dtype=float)
    if xy.ndim != 2 or xy.shape[1] < 2:
        raise ValueError(f"adata.obsm[{spatial_key!r}] must be cells x 2 (x, y); got shape {xy.shape}.")
    if adata.n_obs == 0:
        raise ValueError("The AnnData has no cells to show.")
    if not np.isfinite(xy[:, :2]).all():
        raise ValueError(f"adata.obsm[{spatial_key!r}] holds NaN or infinite coordinates; drop those cells first.")
    return xy[:, :2]


def _pick_library(adata: AnnData, library_id: str | None) -> str | None:
    libraries = adata.uns.get("spatial")
    if not isinstance(libraries, dict) or not libraries:
        if library_id is not None:
            raise KeyError(f"library_id={library_id!r} given, but adata.uns['spatial'] holds no libraries.")
        return None
    if library_id is not None:
        if library_id not in libraries:
            raise KeyError(f"Library {library_id!r} not in adata.uns['spatial']; available: {list(libraries)}.")
        return library_id
    if len(libraries) > 1:
        logger.info("Several libraries in uns['spatial'] (%s); showing %r.", list(libraries), next(iter(libraries)))
    return next(iter(libraries))


def _nearest_neighbour_spacing(points: np.ndarray) -> float:
    """Median distance to the nearest other cell: a point size at which neighbours just touch."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return 1.0
    distances, _ = cKDTree(points).query(points, k=2)
    spacing = float(np.median(distances[:, 1]))
    return spacing if spacing > 0 else 1.0


def spatial_layout(
    adata: AnnData,
    *,
    library_id: str | None = None,
    spatial_key: str = "spatial",
    library_key: str = "library_id",
) -> SpatialLayout:
    """Where each cell sits on the tissue image, as napari points expect it.

    ``obsm[spatial_key]`` holds (x, y) in full-resolution pixels (the squidpy/scanpy layout); a
    Visium image in ``uns['spatial'][library_id]['images']`` is a scaled copy, so coordinates are
    multiplied by the matching ``tissue_hires_scalef`` / ``tissue_lowres_scalef`` and swapped to
    napari's (row, column). The hires image is preferred.

    Parameters
    ----------
    adata
        AnnData with spatial coordinates.
    library_id
        Library of ``uns['spatial']`` to show (default: the only one, or the first).
    spatial_key
        ``obsm`` key of the coordinates.
    library_key
        ``obs`` column naming each cell's library; when present, only the library's cells are shown.

    Returns
    -------
    The :class:`SpatialLayout`.
    """
    xy = _coordinates(adata, spatial_key)
    library = _pick_library(adata, library_id)
    cells = np.arange(adata.n_obs)
    if library is not None and library_key in adata.obs:
        cells = np.flatnonzero(adata.obs[library_key].astype(str).to_numpy() == str(library))
        if len(cells) == 0:
            raise ValueError(f"No cell has obs[{library_key!r}] == {library!r}; check library_id.")
    points = xy[cells][:, ::-1]
    image, resolution, scale = None, None, 1.0
    spot_diameter = None
    if library is not None:
        entry = adata.uns["spatial"][library]
        images = entry.get("images", {}) or {}
        factors = entry.get("scalefactors", {}) or {}
        spot_diameter = factors.get("spot_diameter_fullres")
        for name in _IMAGE_RESOLUTIONS:
            factor = factors.get(f"tissue_{name}_scalef")
            if name in images and factor is not None:
                image, resolution, scale = np.asarray(images[name]), name, float(factor)
                break
        else:
            if images:
                logger.warning(
                    "uns['spatial'][%r] has images %s but no matching tissue_<res>_scalef; showing no image.",
                    library,
                    list(images),
                )
    points = points * scale
    if spot_diameter is not None and float(spot_diameter) > 0:
        size = float(spot_diameter) * scale
    else:
        size = _nearest_neighbour_spacing(points)
    return SpatialLayout(points, cells, size, image, resolution, library)


def score_programs_available(adata: AnnData, scores_key: str = DEFAULT_SCORES_KEY) -> list[str]:
    """Names of the programs scored in ``obsm[scores_key]`` (empty when there are none)."""
    scores = adata.obsm.get(scores_key) if scores_key in adata.obsm else None
    if isinstance(scores, pd.DataFrame):
        return [str(c) for c in scores.columns]
    return []


def _programs_keys(adata: AnnData) -> list[str]:
    """The ``uns['gv']`` keys of the programs written by ``gv.tl.programs``, in order."""
    store = adata.uns.get(UNS_KEY, {})
    if not isinstance(store, dict):
        return []
    return [str(key) for key, record in store.items() if isinstance(record, dict) and record.get("kind") == "programs"]


def unscored_programs_key(adata: AnnData) -> str | None:
    """The ``uns['gv']`` key of programs that could be scored (written by ``gv.tl.programs``), if any."""
    keys = _programs_keys(adata)
    return keys[0] if keys else None


def program_values(adata: AnnData, program: str, scores_key: str = DEFAULT_SCORES_KEY) -> np.ndarray:
    """Each cell's score for ``program`` (float64), from ``obsm[scores_key]``.

    Parameters
    ----------
    adata
        AnnData scored by ``gv.tl.score_programs``.
    program
        Program name (a column of ``obsm[scores_key]``).
    scores_key
        ``obsm`` key of the scores.

    Returns
    -------
    Array of length ``n_obs``; a KeyError says how to get scores when they are missing.
    """
    if scores_key not in adata.obsm:
        hint = (
            "run gv.tl.score_programs(adata) (the programs exist)"
            if unscored_programs_key(adata)
            else "run gv.tl.programs(adata) then gv.tl.score_programs(adata)"
        )
        raise KeyError(f"No program scores in adata.obsm[{scores_key!r}]: {hint}, or show a gene instead.")
    scores = adata.obsm[scores_key]
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(
            f"adata.obsm[{scores_key!r}] must be a DataFrame of programs (as gv.tl.score_programs writes)."
        )
    if program not in scores.columns:
        raise KeyError(f"Program {program!r} not in adata.obsm[{scores_key!r}]; available: {list(scores.columns)}.")
    return scores[program].to_numpy(dtype=float)


#: The cell-type choice that colours cells by their assigned type (the others show one type's probability).
ALL_TYPES = "all types"


def cell_type_choices(adata: AnnData, key: str = Key.CELL_TYPE) -> list[str]:
    """What the cell-type view offers: all types (``obs[key]``), then each type's probability, if annotated.

    Parameters
    ----------
    adata
        The cells.
    key
        The ``key_added`` of :func:`geneverse.tl.annotate`.

    Returns
    -------
    ``[ALL_TYPES, type, ...]``, or an empty list when ``obs[key]`` is absent.
    """
    if key not in adata.obs:
        return []
    slot = f"{key}{Key.PROBABILITIES_SUFFIX}"
    types = [str(t) for t in pd.DataFrame(adata.obsm[slot]).columns] if slot in adata.obsm else []
    return [ALL_TYPES, *types]


def cell_type_values(adata: AnnData, choice: str, key: str = Key.CELL_TYPE) -> np.ndarray:
    """The assigned types (``choice == ALL_TYPES``; strings) or one type's probabilities (float64).

    Parameters
    ----------
    adata
        The cells.
    choice
        :data:`ALL_TYPES` or a type of ``obsm[key + "_probabilities"]``.
    key
        The ``key_added`` of :func:`geneverse.tl.annotate`.

    Returns
    -------
    One value per cell.
    """
    if key not in adata.obs:
        raise KeyError(f"No cell types in adata.obs[{key!r}]: run gv.tl.annotate on the AnnData and save it.")
    if choice == ALL_TYPES:
        return adata.obs[key].astype(str).to_numpy()
    slot = f"{key}{Key.PROBABILITIES_SUFFIX}"
    probabilities = pd.DataFrame(adata.obsm[slot]) if slot in adata.obsm else pd.DataFrame()
    if choice not in probabilities.columns:
        raise KeyError(f"No probability of {choice!r} in adata.obsm[{slot!r}]; types: {list(probabilities.columns)}.")
    return probabilities[choice].to_numpy(dtype=float)


def match_gene(adata: AnnData, query: str) -> str | None:
    """The gene named ``query``: exact, else case-insensitive; ``None`` when there is none."""
    if query in adata.var_names:
        return query
    lowered = query.lower()
    return next((str(g) for g in adata.var_names if str(g).lower() == lowered), None)


def find_gene(adata: AnnData, query: str) -> str:
    """The gene named ``query`` (exact, else case-insensitive), or a KeyError suggesting close names."""
    matched = match_gene(adata, query)
    if matched is not None:
        return matched
    names = [str(g) for g in adata.var_names]
    # names containing the query first (typing "CD3" finds CD3D, CD3E, CD3G), then look-alikes
    close = sorted((g for g in names if query.lower() in g.lower()), key=lambda g: (len(g), g))[:5]
    if not close:
        close = difflib.get_close_matches(query, names, n=5, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"Gene {query!r} not in adata.var_names.{hint}")


@shared_docs
def gene_values(adata: AnnData, gene: str, layer: str | None = None) -> np.ndarray:
    """Each cell's expression of ``gene`` (float64) from ``X`` or ``layer``.

    Parameters
    ----------
    adata
        AnnData.
    gene
        Gene name (exact, else case-insensitive; a KeyError suggests close names).
    {doc_layer}

    Returns
    -------
    Array of length ``n_obs``.
    """
    column = adata.var_names.get_loc(find_gene(adata, gene))
    matrix, _ = get_expression(adata, layer)
    values = matrix[:, column]
    if sp.issparse(values):
        values = values.toarray()
    return np.asarray(values, dtype=float).ravel()


def top_genes(adata: AnnData, program: str, n: int = 10, scores_key: str = DEFAULT_SCORES_KEY) -> list[str]:
    """The ``n`` most central genes of ``program`` (as ``gv.tl.programs`` ordered them), if known.

    Parameters
    ----------
    adata
        AnnData with programs from ``gv.tl.programs``.
    program
        Program name.
    n
        Number of genes.
    scores_key
        ``obsm`` key of the scores, whose record names the programs they were computed from.

    Returns
    -------
    Gene names, most central first; empty when the program's genes are not recorded.
    """
    keys = _programs_keys(adata)
    if not keys:
        return []
    store = adata.uns[UNS_KEY]
    record = store.get(scores_key)
    source = record.get("programs") if isinstance(record, dict) else None
    # the programs these scores were computed from first, then any others
    for key in ([source] if source in keys else []) + keys:
        genes = store[key].get("programs", {}).get(program)
        if genes is not None:
            return [str(g) for g in np.asarray(genes)[:n]]
    return []


def contrast_limits(values: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[float, float]:
    """Robust colour limits: the given percentiles of the finite values, widened when they coincide."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, percentiles))
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    if high <= low:
        high = low + 1.0
    return low, high
