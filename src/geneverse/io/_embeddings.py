"""Import and export gene embeddings: word2vec text, pickled dicts (GenePT), CSV/TSV, ``.npy``."""

from __future__ import annotations

import hashlib
import io
import pickle
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._data import write_result
from .._docs import shared_docs
from .._files import atomic_open, check_output_path, write_table, write_text
from .._keys import Key
from .._utils import renamed_parameters, resolve_modality

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


#: First line of a ``.genes.txt`` written by :func:`write_embeddings`: ties it to its ``.npy``.
_GENES_HEADER = "#geneverse-vectors "


def _vectors_digest(vectors: np.ndarray) -> str:
    """Hash of an array's dtype, shape and values (what ``np.save`` writes)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{vectors.dtype.str}{vectors.shape}".encode())
    digest.update(np.ascontiguousarray(vectors).tobytes())
    return digest.hexdigest()


#: What a GenePT-style pickle may contain: containers, numbers, strings and numpy arrays.
_SAFE_GLOBALS = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "float"), ("builtins", "int"), ("builtins", "str"),
    ("collections", "OrderedDict"), ("_codecs", "encode"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *((module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
      for name in ("_reconstruct", "scalar")),
    *((module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")),
}  # fmt: skip


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only containers, numbers, strings and numpy arrays: no other class or function runs."""

    def find_class(self, module: str, name: str) -> Any:
        # exact names only: a dotted name would be looked up attribute by attribute (a way out)
        dtype_class = module == "numpy.dtypes" and name.isidentifier() and name.endswith("DType")
        if (module, name) in _SAFE_GLOBALS or dtype_class:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"the pickle asks for {module}.{name}, which a gene -> vector table does not need; refused "
            "(only dicts, lists, tuples, numbers, strings and numpy arrays are read)"
        )


def _read_pickle(path: Path) -> Any:
    with open(path, "rb") as handle:
        try:
            return _RestrictedUnpickler(handle).load()
        except (
            pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError,
            MemoryError, OverflowError,
        ) as error:  # fmt: skip
            raise ValueError(f"{path.name} cannot be read as a pickled dict of gene -> vector: {error}.") from None


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


def _check_names(names: list[str], source: str) -> None:
    """Gene names must be non-empty text (an empty name cannot be matched, written or read back)."""
    empty = [i for i, name in enumerate(names) if name == ""]
    if empty:
        raise ValueError(
            f"{source} has {len(empty)} empty gene name(s) (rows {empty[:5]}); give every vector a gene name."
        )


def _read_table(
    source: Any, format: str | None, genes: Sequence[str] | str | Path | None, allow_pickle: bool = False
) -> tuple[list[str], np.ndarray]:
    """Gene names and a genes x dims array from a path, a mapping or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        names = [str(g) for g in source.index]
        _check_names(names, "The DataFrame")
        try:
            return names, source.to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"The embedding table has non-numeric entries ({error}).") from None
    if isinstance(source, Mapping):
        names = [str(k) for k in source]
        _check_names(names, "The mapping")
        try:
            rows = [np.asarray(v, dtype=np.float64).ravel() for v in source.values()]
        except (TypeError, ValueError) as error:
            raise ValueError(f"The gene -> vector mapping has a non-numeric vector ({error}).") from None
        return names, _stack(rows, names, "the mapping")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"No embedding file at {path}.")
    kind = _format_of(path, format)
    if kind == "word2vec":
        return _read_word2vec(path)
    if kind == "pickle":
        if not allow_pickle:
            raise ValueError(
                f"{path.name} is a pickle, and loading a pickle can run code hidden in it. If you trust the "
                "file (e.g. GenePT's own release), pass allow_pickle=True: it is then read by a restricted "
                "unpickler that accepts only dicts, lists, numbers, strings and numpy arrays."
            )
        mapping = _read_pickle(path)
        if not isinstance(mapping, Mapping):
            raise ValueError(f"{path.name} holds a {type(mapping).__name__}, not a dict of gene -> vector.")
        return _read_table(mapping, None, None)
    if kind in ("csv", "tsv"):
        # gene names are plain text: no number parsing ("1 " and "1"), no NA parsing ("NA", "None", "nan")
        frame = pd.read_csv(
            path, sep="," if kind == "csv" else "\t", index_col=0, dtype={0: str}, keep_default_na=False,
            na_values=[],
        )  # fmt: skip
        return _read_table(frame, None, None)
    with open(path, "rb") as handle:
        vectors = np.load(handle, allow_pickle=False)
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
        lines = Path(genes).read_text(encoding="utf-8").removesuffix("\n").split("\n")
        if lines and lines[0].startswith(_GENES_HEADER):
            fields = dict(f.split("=", 1) for f in lines[0][len(_GENES_HEADER) :].split() if "=" in f)
            if fields.get("blake2b") != _vectors_digest(vectors):
                raise ValueError(
                    f"{Path(genes).name} was written for other vectors than those in {path.name} (one of the two "
                    "was replaced or its writing was interrupted), so genes would get each other's vectors; "
                    "write both again with gv.io.write_embeddings."
                )
            lines = lines[1:]
        genes = lines
    names = [str(g) for g in genes]
    if len(names) != len(vectors):
        raise ValueError(f"{len(names)} gene names for {len(vectors)} vectors in {path.name}.")
    _check_names(names, path.name)
    return names, vectors.astype(np.float64)


@shared_docs
def read_embeddings(
    adata: Any,
    source: str | Path | Mapping | pd.DataFrame,
    *,
    key_added: str = Key.IMPORTED_VECTORS,
    format: str | None = None,
    genes: Sequence[str] | str | Path | None = None,
    gene_column: str | None = None,
    case_sensitive: bool = True,
    allow_pickle: bool = False,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Align an external genes x dims embedding to ``var`` and store it in ``varm[key_added]``.

    Parameters
    ----------
    {doc_adata}
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
        ``<name>.genes.txt`` beside it, as :func:`write_embeddings` writes (its first line then holds
        a hash of the vectors, and a pair that does not belong together is refused).
    gene_column
        Match the source's gene names against this ``var`` column instead of ``var_names``.
    case_sensitive
        Match names exactly (default) or ignoring case.
    allow_pickle
        Read a ``.pkl``/``.pickle`` file. Off by default, since a crafted pickle can run code when
        loaded; when on, the file is read by a restricted unpickler that builds only dicts, lists,
        tuples, numbers, strings and numpy arrays, and refuses anything else.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``varm[key_added]`` (float32; genes the source lacks
    get NaN rows, which every query skips) and ``uns['gv'][key_added]`` with ``source``,
    ``n_found``, ``n_missing`` and ``missing_genes``. A warning names the missing genes.
    """
    started = time.perf_counter()
    modality = resolve_modality(adata, mod)
    if not isinstance(key_added, str) or not key_added:
        raise ValueError("key_added must be a non-empty string.")
    names, vectors = _read_table(source, format, genes, allow_pickle)
    if not np.isfinite(vectors).all():
        bad = [names[i] for i in np.flatnonzero(~np.isfinite(vectors).all(axis=1))[:5]]
        raise ValueError(f"The embedding has NaN or infinite values (e.g. genes {bad}); fix or drop those rows.")
    limit = float(np.finfo(np.float32).max)
    too_large = np.abs(vectors).max(axis=1, initial=0.0) > limit
    if too_large.any():
        bad = [names[i] for i in np.flatnonzero(too_large)[:5]]
        raise ValueError(
            f"The embedding has values beyond float32's range (|x| > {limit:.3g}, e.g. genes {bad}), which varm "
            "stores as float32; rescale the vectors (e.g. divide by their largest value) first."
        )
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
    record = {
        "kind": "embedding",
        "method": "imported",
        "source": str(source) if isinstance(source, str | Path) else type(source).__name__,
        "n_found": int(found.sum()),
        "n_missing": len(missing),
        "missing_genes": np.asarray(missing, dtype=object),
    }
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, varm={key_added: aligned})


@renamed_parameters(key="vectors_key")
@shared_docs
def write_embeddings(
    adata: Any,
    path: str | Path,
    *,
    vectors_key: str = Key.GENE_VECTORS,
    format: str | None = None,
    gene_symbols: str | None = None,
    mod: str | None = None,
) -> Path:
    """Write ``varm[vectors_key]`` in one of the formats :func:`read_embeddings` reads.

    Genes without a vector (NaN rows) are left out. Everything is checked before anything is
    written, and each file is written atomically (a temporary file, then a rename), so a failure
    leaves any previous file intact. A ``.npy`` file's gene list ``<name>.genes.txt`` starts with
    a line holding a hash of the vectors, so that a pair from different runs is refused when read.

    Parameters
    ----------
    {doc_adata}
    path
        Output file; the suffix picks the format (``.txt``/``.vec`` word2vec, ``.pkl`` pickle,
        ``.csv``, ``.tsv``, ``.npy`` plus ``<name>.genes.txt``).
    vectors_key
        ``varm`` key.
    format
        Override the format inferred from the suffix.
    gene_symbols
        ``var`` column to write as gene names instead of ``var_names``.
    {doc_mod}

    Returns
    -------
    The path written.
    """
    modality = resolve_modality(adata, mod)
    if vectors_key not in modality.varm:
        raise KeyError(f"No varm[{vectors_key!r}] to write; varm keys: {list(modality.varm.keys())}.")
    path = check_output_path(path, "path")
    kind = _format_of(path, format)
    vectors = np.asarray(modality.varm[vectors_key], dtype=np.float64)
    keep = np.isfinite(vectors).all(axis=1)
    if gene_symbols is not None and gene_symbols not in modality.var.columns:
        raise KeyError(f"gene_symbols={gene_symbols!r} is not a column of adata.var.")
    labels = modality.var_names if gene_symbols is None else modality.var[gene_symbols].astype(str)
    names = [str(g) for g in np.asarray(labels)[keep]]
    vectors = vectors[keep]
    # everything is checked before anything is written
    _check_names(names, f"varm[{vectors_key!r}]'s genes")
    if kind == "word2vec" and any(any(ch.isspace() for ch in n) for n in names):
        raise ValueError("Gene names contain whitespace, which the word2vec text format cannot hold; use .tsv.")
    if kind == "npy" and any("\n" in n or "\r" in n for n in names):
        raise ValueError("Gene names contain line breaks, which the .genes.txt list cannot hold; use .tsv.")
    if kind in ("pickle", "npy") and np.abs(vectors).max(initial=0.0) > np.finfo(np.float32).max:
        raise ValueError(f"varm[{vectors_key!r}] has values beyond float32's range; rescale them or write .tsv/.txt.")
    if kind == "word2vec":
        lines = [f"{len(names)} {vectors.shape[1]}"]
        lines += [name + " " + " ".join(repr(float(v)) for v in row) for name, row in zip(names, vectors, strict=True)]
        write_text(path, "\n".join(lines) + "\n")
    elif kind == "pickle":
        with atomic_open(path, "wb") as handle:
            pickle.dump({n: row.astype(np.float32) for n, row in zip(names, vectors, strict=True)}, handle)
    elif kind in ("csv", "tsv"):
        frame = pd.DataFrame(vectors, index=pd.Index(names, name="gene"))
        write_table(frame, path, sep="," if kind == "csv" else "\t", float_format="%.9g")
    else:
        # Two files cannot be replaced together atomically: the gene list carries a hash of the
        # vectors, and read_embeddings refuses a pair that does not match (e.g. after a crash between).
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, array)
        gene_path = check_output_path(_npy_gene_path(path), "the gene list")
        with atomic_open(path, "wb") as handle:
            handle.write(buffer.getvalue())
        header = f"{_GENES_HEADER}blake2b={_vectors_digest(array)} rows={len(names)} file={path.name}"
        write_text(gene_path, "\n".join([header, *names]) + "\n")
    return path
