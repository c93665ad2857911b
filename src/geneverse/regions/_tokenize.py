"""Region sets -> tokens of a universe: BED files, DataFrames or the cells of an ATAC modality."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._utils import is_mudata, write_uns

BED_COLUMNS = ["chrom", "start", "end"]
_PEAK = re.compile(r"^(?P<chrom>[^:_]+(?:_[^:_]+)*?)[:_](?P<start>\d+)[-_](?P<end>\d+)$")


def read_bed(path: str | Path) -> pd.DataFrame:
    """Read the first three columns of a BED file (plain or gzipped; ``#``, ``track`` and ``browser`` lines skipped).

    Parameters
    ----------
    path
        The BED file.

    Returns
    -------
    DataFrame with ``chrom`` (str), ``start``, ``end`` (int64, 0-based half-open as in BED).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No BED file at {path}.")
    frame = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=[0, 1, 2], names=BED_COLUMNS, dtype=str)
    frame = frame[~frame["chrom"].str.startswith(("track", "browser"))]
    try:
        frame[["start", "end"]] = frame[["start", "end"]].astype(np.int64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path.name}: start and end must be integers ({error}).") from None
    return _check_intervals(frame.reset_index(drop=True), path.name)


def _check_intervals(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in BED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: region tables need columns {BED_COLUMNS}; missing {missing}.")
    frame = frame[BED_COLUMNS].copy()
    frame["chrom"] = frame["chrom"].astype(str)
    frame[["start", "end"]] = frame[["start", "end"]].astype(np.int64)
    if (frame["end"] <= frame["start"]).any() or (frame["start"] < 0).any():
        raise ValueError(f"{name}: every region needs 0 <= start < end (BED is 0-based, half-open).")
    return frame


def parse_peaks(names: Sequence[str]) -> pd.DataFrame:
    """Peak names ``chr1:100-200`` or ``chr1_100_200`` as a region table.

    Parameters
    ----------
    names
        Peak names, e.g. an ATAC modality's ``var_names``.

    Returns
    -------
    DataFrame with ``chrom``, ``start``, ``end``.
    """
    rows = []
    for name in names:
        match = _PEAK.match(str(name))
        if match is None:
            raise ValueError(f"Peak name {name!r} is not 'chrom:start-end' or 'chrom_start_end'.")
        rows.append((match["chrom"], int(match["start"]), int(match["end"])))
    return _check_intervals(pd.DataFrame(rows, columns=BED_COLUMNS), "peak names")


def overlap_matrix(regions: pd.DataFrame, universe: pd.DataFrame) -> sp.csr_matrix:
    """Regions x universe indicator of overlaps (half-open intervals: touching ones do not overlap), via bioframe."""
    import bioframe

    pairs = bioframe.overlap(regions, universe, how="inner", return_index=True, return_input=False)
    rows = pairs["index"].to_numpy(dtype=np.int64) if len(pairs) else np.empty(0, np.int64)
    cols = pairs["index_"].to_numpy(dtype=np.int64) if len(pairs) else np.empty(0, np.int64)
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(regions), len(universe)))
    matrix.data[:] = 1.0
    return matrix


def _region_sets(sets: Any) -> dict[str, pd.DataFrame]:
    if isinstance(sets, str | Path):
        folder = Path(sets)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder of BED files.")
        paths = sorted([*folder.glob("*.bed"), *folder.glob("*.bed.gz")])
        if not paths:
            raise ValueError(f"No .bed or .bed.gz files in {folder}.")
        return {p.name.removesuffix(".gz").removesuffix(".bed"): read_bed(p) for p in paths}
    if isinstance(sets, Mapping):
        return {str(k): _check_intervals(v, str(k)) for k, v in sets.items()}
    if isinstance(sets, Sequence):
        return {Path(p).name.removesuffix(".gz").removesuffix(".bed"): read_bed(p) for p in sets}
    raise TypeError(
        "region sets must be a folder, a list of BED paths, a dict of name -> DataFrame, or an ATAC AnnData."
    )


def _universe(universe: Any) -> pd.DataFrame:
    if isinstance(universe, pd.DataFrame):
        return _check_intervals(universe, "universe").reset_index(drop=True)
    return read_bed(universe)


def tokenize(
    region_sets: Any,
    universe: str | Path | pd.DataFrame,
    *,
    metadata: pd.DataFrame | str | Path | None = None,
    mod: str | None = None,
) -> AnnData:
    """Map region sets onto a universe of regions: an AnnData of sets x universe regions.

    A set's tokens are the universe regions that overlap at least one of its regions (BED
    coordinates: 0-based, half-open, so intervals that only touch do not overlap), found with
    bioframe's interval overlap.

    Parameters
    ----------
    region_sets
        A folder of ``.bed``/``.bed.gz`` files, a list of BED paths, a dict of set name ->
        DataFrame (``chrom``, ``start``, ``end``), or an ATAC AnnData (or MuData with ``mod``) whose
        ``var_names`` are peaks (``chr1:100-200`` or ``chr1_100_200``): each cell's set is the peaks
        it has counts in, and its ``obs`` becomes the metadata.
    universe
        BED path or DataFrame of the universe regions.
    metadata
        Labels of the sets: a DataFrame (or CSV/TSV path) indexed by set name (file name without
        ``.bed``), or with a ``file``/``name`` column.
    mod
        Modality of a MuData (e.g. ``"atac"``).

    Returns
    -------
    AnnData with ``X`` the binary sets x universe matrix (CSR), ``var`` the universe
    (``chrom``, ``start``, ``end``; names ``chrom:start-end``), ``obs`` the metadata, and
    ``uns['gv']['tokenize']`` reporting regions on chromosomes missing from the universe, regions
    without any overlap, and sets left empty (they are kept, with a warning, not dropped).
    """
    universe_frame = _universe(universe)
    if isinstance(region_sets, AnnData) or is_mudata(region_sets):
        atac = region_sets if mod is None else region_sets.mod[mod]
        if is_mudata(atac):
            raise ValueError("Got a MuData: name the ATAC modality with mod='atac'.")
        peaks = parse_peaks(atac.var_names)
        peak_to_universe = overlap_matrix(peaks, universe_frame)
        detected = sp.csr_matrix(atac.X) > 0
        matrix = sp.csr_matrix((detected.astype(np.float64) @ peak_to_universe) > 0, dtype=np.float32)
        names = list(atac.obs_names)
        obs = atac.obs.copy()
        unknown = sorted(set(peaks["chrom"]) - set(universe_frame["chrom"]))
        n_regions = len(peaks)
        unmatched = int((np.diff(peak_to_universe.indptr) == 0).sum())
    else:
        sets = _region_sets(region_sets)
        names = list(sets)
        rows, unknown, unmatched, n_regions = [], set(), 0, 0
        for frame in sets.values():
            hits = overlap_matrix(frame, universe_frame)
            rows.append(sp.csr_matrix(np.asarray(hits.sum(axis=0) > 0, dtype=np.float32)))
            unknown |= set(frame["chrom"]) - set(universe_frame["chrom"])
            unmatched += int((np.diff(hits.indptr) == 0).sum())
            n_regions += len(frame)
        matrix = sp.vstack(rows, format="csr") if rows else sp.csr_matrix((0, len(universe_frame)))
        obs = pd.DataFrame(index=pd.Index(names, name="set"))
        unknown = sorted(unknown)
    if metadata is not None:
        obs = obs.join(_metadata(metadata, names), how="left")
    empty = [names[i] for i in np.flatnonzero(np.diff(matrix.indptr) == 0)]
    if unknown:
        warnings.warn(f"Regions on chromosomes missing from the universe: {unknown[:10]}.", stacklevel=2)
    if empty:
        warnings.warn(
            f"{len(empty)} sets overlap no universe region (e.g. {empty[:5]}); kept as empty rows.", stacklevel=2
        )
    var = universe_frame.copy()
    var.index = [f"{c}:{s}-{e}" for c, s, e in var.itertuples(index=False)]
    adata = AnnData(X=matrix.astype(np.float32), obs=obs.set_axis(pd.Index(names).astype(str)), var=var)
    write_uns(
        adata,
        "tokenize",
        {
            "n_regions": int(n_regions),
            "unknown_chromosomes": np.asarray(unknown, dtype=object),
            "n_regions_without_overlap": int(unmatched),
            "empty_sets": np.asarray(empty, dtype=object),
        },
    )
    return adata


def _metadata(metadata: pd.DataFrame | str | Path, names: list[str]) -> pd.DataFrame:
    if not isinstance(metadata, pd.DataFrame):
        path = Path(metadata)
        metadata = pd.read_csv(path, sep="\t" if path.suffix in (".tsv", ".txt") else ",")
    frame = metadata.copy()
    for column in ("file", "name", "filename"):
        if column in frame.columns:
            frame.index = frame[column].astype(str).str.removesuffix(".gz").str.removesuffix(".bed")
            frame = frame.drop(columns=column)
            break
    frame.index = frame.index.astype(str)
    missing = [n for n in names if n not in frame.index]
    if missing:
        raise KeyError(f"metadata has no row for sets {missing[:5]}; index it by set name (BED file name).")
    return frame.loc[names]
