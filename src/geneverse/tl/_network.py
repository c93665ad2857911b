"""``gv.tl.gene_network``: a gene-gene graph from the gene vectors."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._core._programs import cosine_knn_graph, cosine_threshold_graph
from .._core._search import valid_rows
from .._data import gene_vectors, write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import check_finite_number, check_positive_int, resolve_modality


@shared_docs
def gene_network(
    adata: Any,
    *,
    vectors_key: str = Key.GENE_VECTORS,
    n_neighbors: int | None = None,
    threshold: float | None = None,
    max_edges: int = 2_000_000,
    key_added: str = Key.NETWORK,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Gene-gene graph from the gene vectors: each gene's nearest genes, or every pair above a cosine.

    genevector's ``generate_network`` links genes whose vectors are similar; here the graph is
    sparse and stored in ``varp`` as scanpy stores cell graphs, so it can be exported
    (:func:`geneverse.io.write_network`: GraphML, CSV edges), drawn (:func:`geneverse.pl.gene_network`)
    or clustered. Edge weights are cosine similarities. Genes without a vector have no edge.

    Parameters
    ----------
    {doc_adata_vectors}
    {doc_vectors_key}
    n_neighbors
        Link each gene to its ``n_neighbors`` most similar genes (positive cosines only), symmetrised
        with the larger weight: the graph :func:`programs` clusters. The default (15, as
        :func:`programs`) applies when ``threshold`` is not given.
    threshold
        Instead, link every pair with cosine >= ``threshold`` (in (0, 1]).
    max_edges
        With ``threshold``: more edges than this raise (a low threshold over many genes would fill memory).
    key_added
        The graph goes to ``varp[key_added + "_connectivities"]``, the record to ``uns['gv'][key_added]``.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``varp[key_added + "_connectivities"]`` (genes x genes
    CSR, float32, symmetric) and ``uns['gv'][key_added]`` (parameters, ``n_edges``, ``n_isolated``).
    """
    started = time.perf_counter()
    if n_neighbors is not None and threshold is not None:
        raise ValueError("Give n_neighbors or threshold, not both.")
    if threshold is None:
        n_neighbors = check_positive_int("n_neighbors", 15 if n_neighbors is None else n_neighbors)
    else:
        threshold = check_finite_number("threshold", threshold)
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine in (0, 1], got {threshold!r}.")
        check_positive_int("max_edges", max_edges)
    modality = resolve_modality(adata, mod)
    vectors = gene_vectors(modality, vectors_key)
    usable = np.flatnonzero(valid_rows(vectors))
    if len(usable) < 2:
        raise ValueError(f"varm[{vectors_key!r}] has fewer than 2 genes with a vector; there is no network.")
    if threshold is None:
        graph = cosine_knn_graph(vectors[usable], n_neighbors)
    else:
        graph = cosine_threshold_graph(vectors[usable], threshold, max_edges)
    graph = graph.tocoo()
    n_genes = modality.n_vars
    network = sp.csr_matrix(
        (graph.data.astype(np.float32), (usable[graph.row], usable[graph.col])), shape=(n_genes, n_genes)
    )
    degree = np.diff(network.indptr)
    record = {
        "kind": "gene_network",
        "params": {
            "vectors_key": vectors_key,
            "n_neighbors": n_neighbors,
            "threshold": threshold,
            "max_edges": int(max_edges),
        },
        "n_edges": int(network.nnz // 2),
        "n_isolated": int((degree == 0).sum()),
    }
    varp = {f"{key_added}{Key.CONNECTIVITIES_SUFFIX}": network}
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, varp=varp)
