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
_INT64_MAX = 2**63 - 1
_INT64_MAX_DIGITS = str(_INT64_MAX)
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
    try:
        frame = pd.read_csv(path, sep="\t", header=None, comment="#", usecols=[0, 1, 2], names=BED_COLUMNS, dtype=str)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path.name} is not a BED file (tab-separated chrom, start, end): {reason}.") from None
    frame = frame[~frame["chrom"].str.startswith(("track", "browser"))]
    return _check_intervals(frame.reset_index(drop=True), str(path))


def _bad_coordinate(name: str, column: str, values: pd.Series, bad: np.ndarray, why: str) -> ValueError:
    position = int(np.flatnonzero(bad)[0])
    return ValueError(
        f"{name}: {column} coordinates must be integers in 0..2**63-1 (BED positions); region {position + 1} has "
        f"{values.iloc[position]!r} ({why}). Fix or drop those regions (BED: 0-based, half-open integer positions)."
    )


def _coordinates(values: pd.Series, name: str, column: str) -> np.ndarray:
    """A start or end column as int64, with a ValueError (never an overflow or a wrap-around) for bad values."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise _bad_coordinate(name, column, values, missing, "missing")
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise _bad_coordinate(name, column, values, np.ones(len(values), bool), "a boolean")
    if pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype):
            too_large = values.to_numpy(dtype=np.uint64) > np.uint64(_INT64_MAX)
            if too_large.any():
                raise _bad_coordinate(name, column, values, too_large, "too large")
        return values.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        floats = values.to_numpy(dtype=np.float64)
        finite = np.isfinite(floats)
        if not finite.all():
            raise _bad_coordinate(name, column, values, ~finite, "not finite")
        fractional = floats != np.floor(floats)
        if fractional.any():
            raise _bad_coordinate(name, column, values, fractional, "not an integer")
        # 2.0**63 is the first float above int64's range; beyond it a cast would wrap around
        out_of_range = (floats >= 2.0**63) | (floats < -(2.0**63))
        if out_of_range.any():
            raise _bad_coordinate(name, column, values, out_of_range, "too large")
        return floats.astype(np.int64)
    if pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
        # Text (a BED file) or Python objects: only plain decimal integers, compared as digit strings
        # so that 1e23 or 100000000000000000000000 cannot overflow or wrap around.
        text = values.astype(str).str.strip()
        integer = text.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
        if not integer.all():
            raise _bad_coordinate(name, column, values, ~integer, "not a plain integer")
        digits = text.str.lstrip("+-").str.lstrip("0")
        lengths = digits.str.len().to_numpy()
        limit = len(_INT64_MAX_DIGITS)
        too_large = (lengths > limit) | ((lengths == limit) & (digits > _INT64_MAX_DIGITS).to_numpy(dtype=bool))
        if too_large.any():
            raise _bad_coordinate(name, column, values, too_large, "too large")
        return text.astype(np.int64).to_numpy()
    raise _bad_coordinate(name, column, values, np.ones(len(values), bool), f"dtype {dtype}")


def _check_intervals(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in BED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{name}: region tables need columns {BED_COLUMNS}; missing {missing}.")
    # overlap_matrix works with row positions: a sliced or reindexed table must not keep its labels
    frame = frame[BED_COLUMNS].reset_index(drop=True)
    frame["chrom"] = frame["chrom"].astype(str)
    for column in ("start", "end"):
        frame[column] = _coordinates(frame[column], name, column)
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


def _set_name(path: Path) -> str:
    return path.name.removesuffix(".gz").removesuffix(".bed")


def _named_paths(paths: Sequence[Path]) -> dict[str, Path]:
    """Set name (file name without ``.bed``/``.bed.gz``) -> path; two files with one name are an error."""
    named: dict[str, Path] = {}
    for path in paths:
        name = _set_name(path)
        if name in named:
            raise ValueError(
                f"Two BED files give the region set name {name!r}: {named[name]} and {path}; set names come from "
                "file names, so rename or remove one of them (sets are never merged)."
            )
        named[name] = path
    return named


def _region_sets(sets: Any) -> dict[str, pd.DataFrame]:
    if isinstance(sets, str | Path):
        folder = Path(sets)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder of BED files.")
        paths = sorted([*folder.glob("*.bed"), *folder.glob("*.bed.gz")])
        if not paths:
            raise ValueError(f"No .bed or .bed.gz files in {folder}.")
        return {name: read_bed(p) for name, p in _named_paths(paths).items()}
    if isinstance(sets, Mapping):
        names = pd.Series([str(k) for k in sets])
        clashing = sorted(set(names[names.duplicated()]))
        if clashing:
            raise ValueError(
                f"Region set names {clashing[:5]} occur twice once written as text (e.g. keys 1 and '1'); "
                "give every set a distinct name."
            )
        return {str(k): _check_intervals(v, str(k)) for k, v in sets.items()}
    if isinstance(sets, Sequence):
        return {name: read_bed(p) for name, p in _named_paths([Path(p) for p in sets]).items()}
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
    wanted = set(names)
    duplicated = [n for n in frame.index[frame.index.duplicated()].unique() if n in wanted]
    if duplicated:
        raise ValueError(
            f"metadata has more than one row for sets {duplicated[:5]}; keep one row per set name "
            "(e.g. `metadata.drop_duplicates(...)` or `metadata[~metadata.index.duplicated()]`)."
        )
    missing = [n for n in names if n not in frame.index]
    if missing:
        raise KeyError(f"metadata has no row for sets {missing[:5]}; index it by set name (BED file name).")
    return frame.loc[names]
