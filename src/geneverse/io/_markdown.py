"""Markdown reports of query results."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from .._docs import shared_docs
from .._utils import DESCRIPTION_COLUMNS, resolve_modality

ENSEMBL_GENE = re.compile(r"ENS[A-Z]*G\d{11}(\.\d+)?")
PROTEIN_ATLAS = "https://www.proteinatlas.org/{}"


#: Characters that markdown (or the HTML it may hold) would interpret in a table cell.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape(text: Any) -> str:
    """Text as literal markdown: HTML characters as entities, markdown syntax backslash-escaped.

    Gene names and descriptions come from data files, so ``<script>``, ``[x](javascript:...)``
    or a ``|`` must show as text, never become markup, a link or a new table column.
    """
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    text = " ".join(text.splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    if isinstance(value, _Markup):
        return str(value)
    return escape(value)


class _Markup(str):
    """A cell already rendered as safe markdown (our own Protein Atlas links)."""


def _link(gene: str) -> str:
    if not ENSEMBL_GENE.fullmatch(gene):
        return gene
    # the pattern admits only letters, digits and a dot: safe inside a link as it is
    return _Markup(f"[{gene}]({PROTEIN_ATLAS.format(gene.split('.')[0])})")


@shared_docs
def to_markdown(
    table: pd.DataFrame,
    adata: Any = None,
    *,
    description_key: str | None = None,
    gene_symbols: str | None = None,
    digits: int = 3,
    mod: str | None = None,
) -> str:
    """Render a query result as a markdown table.

    Gene columns (``gene``, ``gene_a``, ``gene_b``, ``gene_x``, ``gene_y``) holding Ensembl gene IDs
    link to the Human Protein Atlas (``https://www.proteinatlas.org/<ID>``). When ``adata`` is given
    and the table has a ``gene`` column but no ``description``, one is added from a ``var`` column.

    Parameters
    ----------
    table
        A result of :func:`~geneverse.tl.similar`, :func:`~geneverse.tl.analogy`,
        :func:`~geneverse.tl.similar_pairs` or :func:`~geneverse.io.top_pairs`.
    adata
        AnnData (or MuData with ``mod``) to take descriptions from.
    description_key
        ``var`` column with descriptions (default: ``description``, ``gene_description`` or
        ``full_name``, whichever exists).
    gene_symbols
        The ``var`` column the table's gene names come from (as passed to the query), if not ``var_names``.
    digits
        Decimals for numbers.
    {doc_mod}

    Returns
    -------
    The markdown text (header, separator, one line per row). Text from the data (gene names,
    descriptions) is escaped: HTML and markdown syntax in it show as literal characters.
    """
    table = table.copy()
    if adata is not None and "gene" in table.columns and "description" not in table.columns:
        modality = resolve_modality(adata, mod)
        if description_key is not None and description_key not in modality.var.columns:
            raise KeyError(f"description_key={description_key!r} is not a column of adata.var.")
        key = description_key or next((c for c in DESCRIPTION_COLUMNS if c in modality.var.columns), None)
        if key is not None:
            names = modality.var_names if gene_symbols is None else modality.var[gene_symbols].astype(str)
            descriptions = pd.Series(modality.var[key].astype(str).to_numpy(), index=pd.Index(names))
            descriptions = descriptions[~descriptions.index.duplicated()]
            table["description"] = table["gene"].map(descriptions).fillna("")
    gene_columns = [c for c in table.columns if c == "gene" or re.fullmatch(r"gene_[a-z]", str(c))]
    for column in gene_columns:
        table[column] = table[column].astype(str).map(_link)
    header = "| " + " | ".join(escape(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"
