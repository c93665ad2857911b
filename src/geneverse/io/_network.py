"""Gene networks (:func:`geneverse.tl.gene_network`) out of AnnData: edge tables and GraphML."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._data import gene_names
from .._docs import shared_docs
from .._files import check_output_path, write_table, write_text
from .._keys import Key
from .._utils import resolve_modality

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".graphml": "graphml"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")


def _format_of(path: Path) -> str | None:
    """The format named by ``path``'s suffix, looking past a compression suffix (``edges.csv.gz``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def network_graph(modality: Any, key: str) -> sp.csr_matrix:
    """``varp[key + "_connectivities"]`` as CSR, or a KeyError naming the fix."""
    slot = f"{key}{Key.CONNECTIVITIES_SUFFIX}"
    if slot not in modality.varp:
        raise KeyError(f"No gene network varp[{slot!r}]; run `gv.tl.gene_network(adata, key_added={key!r})` first.")
    return sp.csr_matrix(modality.varp[slot])


@shared_docs
def network_edges(
    adata: Any, key: str = Key.NETWORK, *, gene_symbols: str | None = None, mod: str | None = None
) -> pd.DataFrame:
    """The gene network's edges as a table, each pair once, strongest first.

    Parameters
    ----------
    {doc_adata}
    key
        The ``key_added`` of :func:`~geneverse.tl.gene_network`.
    {doc_gene_symbols}
    {doc_mod}

    Returns
    -------
    DataFrame with ``source``, ``target`` and ``weight`` (cosine).
    """
    modality = resolve_modality(adata, mod)
    upper = sp.triu(network_graph(modality, key), k=1).tocoo()
    names = np.asarray(gene_names(modality, gene_symbols), dtype=object)
    order = np.lexsort((upper.col, upper.row, -upper.data))
    return pd.DataFrame(
        {"source": names[upper.row[order]], "target": names[upper.col[order]], "weight": upper.data[order]}
    )


def _graphml(edges: pd.DataFrame, nodes: pd.DataFrame) -> str:
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(nodes.index)
    for column in nodes.columns:
        known = nodes[column].dropna()
        nx.set_node_attributes(graph, dict(zip(known.index, known.tolist(), strict=True)), name=str(column))
    graph.add_weighted_edges_from(edges[["source", "target", "weight"]].itertuples(index=False, name=None))
    return "\n".join(nx.generate_graphml(graph)) + "\n"


@shared_docs
def write_network(
    adata: Any,
    path: str | Path,
    key: str = Key.NETWORK,
    *,
    attributes: Sequence[str] | None = (Key.PROGRAMS,),
    gene_symbols: str | None = None,
    format: str | None = None,
    mod: str | None = None,
) -> Path:
    """Write the gene network as GraphML (Cytoscape, Gephi, networkx) or an edge table (CSV/TSV).

    Parameters
    ----------
    {doc_adata}
    path
        Output file; the suffix picks the format (``.graphml``, ``.csv``, ``.tsv``; tables may end in
        ``.gz`` and other pandas compressions) unless ``format`` is given.
    key
        The ``key_added`` of :func:`~geneverse.tl.gene_network`.
    attributes
        ``var`` columns written as node attributes in GraphML (default: the programs, when present);
        in edge tables, as ``source_<column>`` and ``target_<column>``.
    {doc_gene_symbols}
    format
        ``"graphml"``, ``"csv"`` or ``"tsv"``.
    {doc_mod}

    Returns
    -------
    The path written (atomically: a failure leaves a previous file intact). GraphML holds every gene
    with an edge, as nodes named by gene, with the attributes, and edges with a ``weight``.
    """
    path = check_output_path(path, "path")
    format = _format_of(path) if format is None else str(format).lower()
    if format not in ("graphml", "csv", "tsv"):
        raise ValueError(f"Unknown network format for {path.name!r}; use .graphml, .csv or .tsv (or format=).")
    modality = resolve_modality(adata, mod)
    names = pd.Index(np.asarray(gene_names(modality, gene_symbols), dtype=object))
    if names.has_duplicates:
        repeated = list(names[names.duplicated()].unique()[:5])
        raise ValueError(
            f"Gene names {repeated} occur more than once (gene_symbols={gene_symbols!r}); a network needs one node "
            "per name: use unique names (e.g. gene_symbols=None for var_names, or adata.var_names_make_unique())."
        )
    edges = network_edges(modality, key, gene_symbols=gene_symbols)
    columns = [] if attributes is None else list(attributes)
    if attributes is not None and tuple(attributes) == (Key.PROGRAMS,) and Key.PROGRAMS not in modality.var:
        columns = []  # the default: programs only when they were computed
    unknown = [c for c in columns if c not in modality.var.columns]
    if unknown:
        raise KeyError(f"attributes {unknown} are not var columns; var columns: {list(modality.var.columns)}.")
    values = pd.DataFrame({c: modality.var[c].to_numpy() for c in columns}, index=names)
    for column in columns:  # GraphML holds numbers, booleans and strings; missing values stay missing
        known = values[column]
        if not (pd.api.types.is_numeric_dtype(known) or pd.api.types.is_bool_dtype(known)):
            values[column] = known.astype(object).where(known.isna(), known.astype(str))
    if format == "graphml":
        linked = pd.unique(np.concatenate([edges["source"].to_numpy(), edges["target"].to_numpy()]))
        write_text(path, _graphml(edges, values.loc[linked]))
        return path
    for column in columns:
        edges[f"source_{column}"] = values[column].reindex(edges["source"]).to_numpy()
        edges[f"target_{column}"] = values[column].reindex(edges["target"]).to_numpy()
    write_table(edges, path, sep="," if format == "csv" else "\t", index=False, float_format="%.6g")
    return path
