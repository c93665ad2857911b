"""``gv.tl.annotate``: cell types from marker genes, by gene and cell vectors."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._core._annotate import RELATIVE_TEMPERATURE, cosine_scores, group_means, marker_directions, probabilities
from .._core._annotate import temperature as softmax_temperature
from .._core._search import valid_rows
from .._data import cell_vectors, gene_names, gene_vectors, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import resolve_modality

UNASSIGNED = "unassigned"
Markers = Mapping[str, Sequence[str] | Mapping[str, Sequence[str]]]


def same_space(cells: np.ndarray, vectors: np.ndarray, cells_key: str, vectors_key: str) -> None:
    """Cell and gene vectors must have the same size (cells embedded with these gene vectors)."""
    if cells.shape[1] != vectors.shape[1]:
        raise ValueError(
            f"obsm[{cells_key!r}] has {cells.shape[1]} dimensions and varm[{vectors_key!r}] {vectors.shape[1]}; "
            "embed the cells with these gene vectors (`gv.tl.cell_embed(adata, vectors_key)`)."
        )


def group_labels(modality: Any, groupby: str) -> np.ndarray:
    """The ``obs[groupby]`` of every cell as strings; a missing column or a cell without a group raises."""
    if groupby not in modality.obs:
        raise KeyError(f"No obs column {groupby!r} to group by; obs columns: {list(modality.obs.columns)}.")
    if modality.obs[groupby].isna().any():
        raise ValueError(f"obs[{groupby!r}] has missing values; every cell needs a group.")
    return modality.obs[groupby].astype(str).to_numpy()


def read_markers(path: str | os.PathLike) -> dict[str, dict[str, list[str]]]:
    """Marker genes from a file: GMT, JSON or CSV/TSV.

    - GMT: one type per line, ``name<TAB>description<TAB>gene...`` (markers only).
    - JSON: ``{"type": ["gene", ...]}`` or ``{"type": {"up": [...], "down": [...]}}``, optionally
      under a top-level ``"markers"`` key (next to e.g. ``"sources"``).
    - CSV/TSV: columns ``cell_type`` and ``gene``, and optionally ``direction`` (``up``/``down``).

    Parameters
    ----------
    path
        The file; its suffix (``.gmt``, ``.json``, ``.csv``, ``.tsv``, ``.txt``) picks the format.

    Returns
    -------
    Dict type -> ``{"up": genes, "down": genes}``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No marker file at {path}.")
    suffix = path.suffix.lower()
    if suffix == ".gmt":
        from ..bench import read_gmt

        return _normalise(read_gmt(path))
    if suffix == ".json":
        content = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(content, Mapping) and isinstance(content.get("markers"), Mapping):
            content = content["markers"]
        return _normalise(content)
    if suffix in (".csv", ".tsv", ".txt"):
        table = pd.read_csv(path, sep="," if suffix == ".csv" else "\t", dtype=str, keep_default_na=False)
        missing = {"cell_type", "gene"} - set(table.columns)
        if missing:
            raise ValueError(f"{path} needs the columns cell_type and gene (missing {sorted(missing)}).")
        if table.empty:
            raise ValueError(f"{path} holds no markers.")
        direction = table["direction"].str.strip().str.lower() if "direction" in table else None
        direction = direction.replace("", "up") if direction is not None else pd.Series("up", index=table.index)
        bad = sorted(set(direction) - {"up", "down"})
        if bad:
            raise ValueError(f"{path}: direction must be 'up' or 'down', got {bad}.")
        markers: dict[str, dict[str, list[str]]] = {}
        for cell_type, gene, way in zip(
            table["cell_type"].str.strip(), table["gene"].str.strip(), direction, strict=True
        ):
            markers.setdefault(cell_type, {"up": [], "down": []})[way].append(gene)
        return _normalise(markers)
    raise ValueError(f"Unknown marker file type {suffix!r}; use .gmt, .json, .csv, .tsv or .txt (tab-separated).")


def _normalise(markers: Any) -> dict[str, dict[str, list[str]]]:
    """Every type as ``{"up": [...], "down": [...]}``, checked."""
    if isinstance(markers, str | os.PathLike):
        return read_markers(markers)
    if isinstance(markers, pd.Series):
        markers = markers.to_dict()
    if not isinstance(markers, Mapping) or not markers:
        raise TypeError("markers must be a non-empty dict type -> genes (or {'up': [...], 'down': [...]}) or a file.")
    out = {}
    for name, genes in markers.items():
        if isinstance(genes, Mapping):
            unknown = sorted(set(genes) - {"up", "down"})
            if unknown:
                raise ValueError(f"Markers of {name!r} have keys {unknown}; use 'up' and 'down'.")
            up, down = genes.get("up", []), genes.get("down", [])
        else:
            up, down = genes, []
        if isinstance(up, str) or isinstance(down, str):
            raise TypeError(f"Markers of {name!r} must be lists of gene names, not one string.")
        up, down = list(dict.fromkeys(str(g) for g in up)), list(dict.fromkeys(str(g) for g in down))
        if not up:
            raise ValueError(f"Cell type {name!r} has no (up) marker.")
        both = sorted(set(up) & set(down))
        if both:
            raise ValueError(f"Cell type {name!r} lists {both} as both marker and negative marker.")
        if str(name) == UNASSIGNED:
            raise ValueError(f"{UNASSIGNED!r} is the label of cells below min_probability; rename that type.")
        if str(name) in out:
            raise ValueError(f"Cell type {str(name)!r} is given twice.")
        out[str(name)] = {"up": up, "down": down}
    return out


@shared_docs
def annotate(
    adata: Any,
    markers: Markers | str | os.PathLike,
    *,
    vectors_key: str = Key.GENE_VECTORS,
    cells_key: str = Key.CELL_VECTORS,
    groupby: str | None = None,
    min_probability: float = 0.4,
    temperature: float = RELATIVE_TEMPERATURE,
    gene_symbols: str | None = None,
    key_added: str = Key.CELL_TYPE,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Assign cell types from marker genes: the type whose markers' vectors point most like the cell's vector.

    Each type's direction is the mean unit vector of its markers minus that of its negative
    markers (``"down"``, as genevector's ``cluster(up_markers, down_markers)``); a cell's score for
    a type is the cosine between its vector (:func:`cell_embed`) and that direction. Probabilities
    are a softmax over types of ``score / T`` with ``T = temperature * sd(scores)``: relative to
    the per-cell scores' spread, so they do not hinge on one embedding's scale. The default ``temperature``
    was fitted by maximum likelihood on planted cell types (``benchmarks/annotate.py``), never on
    the labels the benchmark evaluates. Cells whose top probability is below ``min_probability``
    are ``"unassigned"``. With ``groupby``, the scores are averaged over each group (e.g.
    clusters) and every cell of a group gets the group's type. Cells whose vector is zero (no
    expressed gene with a vector) are ``"unassigned"`` with equal probabilities.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with gene vectors in ``varm[vectors_key]`` and cell vectors
        in ``obsm[cells_key]``.
    markers
        Dict cell type -> marker genes, or type -> ``{"up": [...], "down": [...]}``; or a GMT,
        JSON or CSV/TSV file (:func:`read_markers`); e.g. :func:`geneverse.datasets.pbmc_markers`.
        Markers missing from the data or without a vector are reported in a warning and in the
        record, never dropped silently; a type left with no marker raises. At least two types.
    {doc_vectors_key}
    cells_key
        ``obsm`` key of the cell vectors (:func:`cell_embed` of the same gene vectors).
    groupby
        An ``obs`` column (e.g. ``"leiden"``): assign per group instead of per cell.
    min_probability
        Cells (or groups) whose top probability is below this are ``"unassigned"`` (0 assigns all).
    temperature
        Softmax temperature as a fraction of the scores' standard deviation.
    {doc_gene_symbols}
    key_added
        ``obs`` column of the types; the probabilities go to ``obsm[key_added + "_probabilities"]``.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``obs[key_added]`` (categorical: the types, then
    ``"unassigned"``), ``obsm[key_added + "_probabilities"]`` (DataFrame cells x types, rows sum to
    1) and ``uns['gv'][key_added]`` with the markers used, the ``missing`` ones, the temperature and
    the parameters.
    """
    started = time.perf_counter()
    modality = resolve_modality(adata, mod)
    marker_sets = _normalise(markers)
    if len(marker_sets) < 2:
        raise ValueError(f"Give at least two cell types (got {list(marker_sets)}); one type would take every cell.")
    if not 0.0 <= float(min_probability) <= 1.0:
        raise ValueError(f"min_probability must be in [0, 1], got {min_probability!r}.")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}.")
    vectors = gene_vectors(modality, vectors_key)
    cells = cell_vectors(modality, cells_key, finite=True)
    same_space(cells, vectors, cells_key, vectors_key)
    groups = None if groupby is None else group_labels(modality, groupby)

    names = np.asarray(gene_names(modality, gene_symbols), dtype=str)
    usable = valid_rows(vectors)
    position = {name: i for i, name in enumerate(names) if usable[i]}
    used: dict[str, dict[str, list[str]]] = {}
    missing: dict[str, list[str]] = {}
    for cell_type, sets in marker_sets.items():
        used[cell_type] = {way: [g for g in genes if g in position] for way, genes in sets.items()}
        lost = [g for genes in sets.values() for g in genes if g not in position]
        if lost:
            missing[cell_type] = lost
    empty = [t for t, sets in used.items() if not sets["up"]]
    if empty:
        raise ValueError(
            f"No marker of {empty} is in the data with a vector (missing: {[missing[t] for t in empty]}). "
            "Check the gene names (gene_symbols=) or give other markers."
        )
    if missing:
        shown = "; ".join(f"{t}: {', '.join(g)}" for t, g in missing.items())
        warnings.warn(f"Markers not in the data (or without a vector) are left out: {shown}.", stacklevel=2)

    directions = marker_directions(
        vectors,
        [np.array([position[g] for g in used[t]["up"]]) for t in used],
        [np.array([position[g] for g in used[t]["down"]], dtype=int) for t in used],
    )
    flat = np.flatnonzero(np.linalg.norm(directions, axis=0) == 0)
    if len(flat):
        raise ValueError(f"The markers of {[list(used)[i] for i in flat]} cancel out (their direction is zero).")
    scores = cosine_scores(cells, directions)
    empty_cells = ~np.any(cells != 0, axis=1)  # no expressed gene with a vector: nothing to go by
    # the temperature follows the per-cell scores' spread (what it was fitted on), also with groups
    reference = scores[~empty_cells] if (~empty_cells).any() else scores
    if groups is not None:
        scores = group_means(scores, groups)
    spread = softmax_temperature(reference, temperature)
    probs = probabilities(scores, spread)
    probs[empty_cells] = 1.0 / len(used)
    types = list(used)
    best = probs.argmax(axis=1)
    labels = np.asarray(types, dtype=object)[best]
    labels[(probs.max(axis=1) < float(min_probability)) | empty_cells] = UNASSIGNED
    column = pd.Categorical(labels, categories=[*types, UNASSIGNED])
    frame = pd.DataFrame(probs, index=modality.obs_names.copy(), columns=types)

    record = {
        "kind": "cell_types",
        "params": {
            "vectors_key": vectors_key,
            "cells_key": cells_key,
            "groupby": groupby,
            "min_probability": float(min_probability),
            "temperature": float(temperature),
            "gene_symbols": gene_symbols,
        },
        "markers": {t: {way: np.asarray(g, dtype=object) for way, g in sets.items()} for t, sets in used.items()},
        "missing": {t: np.asarray(g, dtype=object) for t, g in missing.items()},
        "softmax_temperature": spread,
        "n_unassigned": int((labels == UNASSIGNED).sum()),
    }
    obsm = {f"{key_added}{Key.PROBABILITIES_SUFFIX}": frame}
    return write_result(
        adata, key_added, record, mod=mod, copy=copy, started=started, obs={key_added: column}, obsm=obsm
    )
