"""Import and export gene embeddings: word2vec text, pickled dicts (GenePT), CSV/TSV, ``.npy``."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import copy_container, resolve_modality, write_uns

FORMATS = ("word2vec", "pickle", "csv", "tsv", "npy")
_SUFFIXES = {
    ".txt": "word2vec", ".vec": "word2vec", ".w2v": "word2vec", ".pkl": "pickle", ".pickle": "pickle",
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".npy": "npy",
}  # fmt: skip


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"Unknown embedding format {format!r}; use one of {FORMATS}.")
        return format
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ValueError(f"Cannot tell the format of {path.name!r} from its suffix; pass format= (one of {FORMATS}).")
    return _SUFFIXES[suffix]


def _npy_gene_path(path: Path) -> Path:
    return path.with_suffix(".genes.txt")


def _read_word2vec(path: Path) -> tuple[list[str], np.ndarray]:
    """word2vec / Gene2vec text: optional ``n dims`` header, then ``gene v1 v2 ...`` per line."""
    names, rows = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            fields = line.split()
            if not fields:
                continue
            if number == 0 and len(fields) == 2 and all(f.isdigit() for f in fields):
                continue  # header
            names.append(fields[0])
            try:
                rows.append(np.asarray(fields[1:], dtype=np.float64))
            except ValueError as error:
                raise ValueError(f"{path.name}, line {number + 1}: non-numeric vector entry ({error}).") from None
    return names, _stack(rows, names, str(path))


def _stack(rows: list[np.ndarray], names: list[str], source: str) -> np.ndarray:
    if not rows:
        raise ValueError(f"No vectors found in {source}.")
    sizes = {len(r) for r in rows}
    if len(sizes) != 1:
        raise ValueError(f"Vectors in {source} have different lengths {sorted(sizes)[:5]}; expected one dimension.")
    return np.vstack(rows)


def _read_table(
    source: Any, format: str | None, genes: Sequence[str] | str | Path | None
) -> tuple[list[str], np.ndarray]:
    """Gene names and a genes x dims array from a path, a mapping or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        return [str(g) for g in source.index], source.to_numpy(dtype=np.float64)
    if isinstance(source, Mapping):
        names = [str(k) for k in source]
        return names, _stack([np.asarray(v, dtype=np.float64).ravel() for v in source.values()], names, "the mapping")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"No embedding file at {path}.")
    kind = _format_of(path, format)
    if kind == "word2vec":
        return _read_word2vec(path)
    if kind == "pickle":
        # GenePT ships its embeddings as a pickled dict; unpickling runs code, so only load trusted files.
        with open(path, "rb") as handle:
            mapping = pickle.load(handle)
        if not isinstance(mapping, Mapping):
            raise ValueError(f"{path.name} holds a {type(mapping).__name__}, not a dict of gene -> vector.")
        return _read_table(mapping, None, None)
    if kind in ("csv", "tsv"):
        # gene names are text: unparsed, "1 " and "1" would both become the number 1
        frame = pd.read_csv(path, sep="," if kind == "csv" else "\t", index_col=0, dtype={0: str})
        return _read_table(frame, None, None)
    vectors = np.load(path, allow_pickle=False)
    if vectors.ndim != 2:
        raise ValueError(f"{path.name} holds an array of shape {vectors.shape}; expected genes x dims.")
    if genes is None:
        gene_file = _npy_gene_path(path)
        if not gene_file.exists():
            raise ValueError(
                f"A .npy embedding needs its gene names: pass genes= (a list or a file) or add {gene_file.name}."
            )
        genes = gene_file
    if isinstance(genes, str | Path):
        # one name per line, kept verbatim (names may hold spaces); only the final newline is dropped
        genes = Path(genes).read_text(encoding="utf-8").removesuffix("\n").split("\n")
    names = [str(g) for g in genes]
    if len(names) != len(vectors):
        raise ValueError(f"{len(names)} gene names for {len(vectors)} vectors in {path.name}.")
    return names, vectors.astype(np.float64)


def read_embeddings(
    adata: Any,
    source: str | Path | Mapping | pd.DataFrame,
    *,
    key_added: str = "X_emb",
    format: str | None = None,
    genes: Sequence[str] | str | Path | None = None,
    gene_column: str | None = None,
    case_sensitive: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Align an external genes x dims embedding to ``var`` and store it in ``varm[key_added]``.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``).
    source
        A file (word2vec/Gene2vec text ``.txt``/``.vec``, GenePT's pickled ``dict[gene] -> vector``
        ``.pkl``, ``.csv``/``.tsv`` with genes in the first column, ``.npy`` with ``genes``), an
        in-memory mapping of gene -> vector, or a DataFrame indexed by gene.
    key_added
        ``varm`` and ``uns['gv']`` key.
    format
        Override the format inferred from the suffix: one of ``word2vec``, ``pickle``, ``csv``,
        ``tsv``, ``npy``.
    genes
        For ``.npy``: the gene names (a list, or a text file with one per line); default: the file
        ``<name>.genes.txt`` beside it, as :func:`write_embeddings` writes.
    gene_column
        Match the source's gene names against this ``var`` column instead of ``var_names``.
    case_sensitive
        Match names exactly (default) or ignoring case.
    mod
        Modality of a MuData.
    copy
        Return a modified copy instead of writing into ``adata``.

    Returns
    -------
    ``None``, or the modified copy. Writes ``varm[key_added]`` (float32; genes the source lacks
    get NaN rows, which every query skips) and ``uns['gv'][key_added]`` with ``source``,
    ``n_found``, ``n_missing`` and ``missing_genes``. A warning names the missing genes.
    """
    modality = resolve_modality(adata, mod)
    if not isinstance(key_added, str) or not key_added:
        raise ValueError("key_added must be a non-empty string.")
    names, vectors = _read_table(source, format, genes)
    if not np.isfinite(vectors).all():
        bad = [names[i] for i in np.flatnonzero(~np.isfinite(vectors).all(axis=1))[:5]]
        raise ValueError(f"The embedding has NaN or infinite values (e.g. genes {bad}); fix or drop those rows.")
    if gene_column is not None and gene_column not in modality.var.columns:
        raise KeyError(f"gene_column={gene_column!r} is not a column of adata.var.")
    targets = modality.var_names if gene_column is None else modality.var[gene_column].astype(str)
    fold = (lambda s: s) if case_sensitive else str.upper
    lookup: dict[str, int] = {}
    duplicates = []
    for i, name in enumerate(names):
        folded = fold(name)
        if folded in lookup:
            duplicates.append(name)
        else:
            lookup[folded] = i
    if duplicates:
        warnings.warn(
            f"{len(duplicates)} duplicated genes in the embedding (e.g. {duplicates[:5]}); kept the first.",
            stacklevel=2,
        )
    rows = np.array([lookup.get(fold(str(g)), -1) for g in targets])
    found = rows >= 0
    if not found.any():
        raise ValueError(
            f"None of the {len(names)} embedded genes (e.g. {names[:3]}) match "
            f"{'var_names' if gene_column is None else f'var[{gene_column!r}]'} (e.g. {list(targets[:3])}); "
            "try gene_column= or case_sensitive=False."
        )
    missing = [str(g) for g, ok in zip(targets, found, strict=True) if not ok]
    if missing:
        warnings.warn(
            f"{len(missing)} of {len(targets)} genes have no vector in the embedding (e.g. {missing[:5]}); "
            "their rows are NaN and queries skip them.",
            stacklevel=2,
        )
    aligned = np.full((modality.n_vars, vectors.shape[1]), np.nan, dtype=np.float32)
    aligned[found] = vectors[rows[found]]
    result = copy_container(adata) if copy else adata
    out = resolve_modality(result, mod)
    out.varm[key_added] = aligned
    write_uns(
        out,
        key_added,
        {
            "kind": "embedding",
            "method": "imported",
            "source": str(source) if isinstance(source, str | Path) else type(source).__name__,
            "n_found": int(found.sum()),
            "n_missing": len(missing),
            "missing_genes": np.asarray(missing, dtype=object),
        },
    )
    return result if copy else None


def write_embeddings(
    adata: Any,
    path: str | Path,
    *,
    key: str = "X_gv",
    format: str | None = None,
    gene_symbols: str | None = None,
    mod: str | None = None,
) -> Path:
    """Write ``varm[key]`` in one of the formats :func:`read_embeddings` reads.

    Genes without a vector (NaN rows) are left out.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``).
    path
        Output file; the suffix picks the format (``.txt``/``.vec`` word2vec, ``.pkl`` pickle,
        ``.csv``, ``.tsv``, ``.npy`` plus ``<name>.genes.txt``).
    key
        ``varm`` key.
    format
        Override the format inferred from the suffix.
    gene_symbols
        ``var`` column to write as gene names instead of ``var_names``.
    mod
        Modality of a MuData.

    Returns
    -------
    The path written.
    """
    modality = resolve_modality(adata, mod)
    if key not in modality.varm:
        raise KeyError(f"No varm[{key!r}] to write; varm keys: {list(modality.varm.keys())}.")
    path = Path(path)
    kind = _format_of(path, format)
    vectors = np.asarray(modality.varm[key], dtype=np.float64)
    keep = np.isfinite(vectors).all(axis=1)
    if gene_symbols is not None and gene_symbols not in modality.var.columns:
        raise KeyError(f"gene_symbols={gene_symbols!r} is not a column of adata.var.")
    labels = modality.var_names if gene_symbols is None else modality.var[gene_symbols].astype(str)
    names = [str(g) for g in np.asarray(labels)[keep]]
    if any(any(ch.isspace() for ch in n) for n in names) and kind == "word2vec":
        raise ValueError("Gene names contain whitespace, which the word2vec text format cannot hold; use .tsv.")
    vectors = vectors[keep]
    if kind == "word2vec":
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"{len(names)} {vectors.shape[1]}\n")
            for name, row in zip(names, vectors, strict=True):
                handle.write(name + " " + " ".join(repr(float(v)) for v in row) + "\n")
    elif kind == "pickle":
        with open(path, "wb") as handle:
            pickle.dump({n: row.astype(np.float32) for n, row in zip(names, vectors, strict=True)}, handle)
    elif kind in ("csv", "tsv"):
        frame = pd.DataFrame(vectors, index=pd.Index(names, name="gene"))
        frame.to_csv(path, sep="," if kind == "csv" else "\t", float_format="%.9g")
    else:
        np.save(path, vectors.astype(np.float32))
        if any("\n" in n for n in names):
            raise ValueError("Gene names contain line breaks, which the .genes.txt list cannot hold; use .tsv.")
        _npy_gene_path(path).write_text("\n".join(names) + "\n", encoding="utf-8")
    return path
