"""Clonotype graphs from scirpy output or any obs column."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._data import write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import is_mudata, resolve_modality


def _clone_column(data: Any, clone_key: str, cells: pd.Index) -> pd.Series:
    """Each cell's clone: from ``obs``, a MuData's joined ``obs`` (``"airr:clone_id"``) or a modality."""
    frames = [data.obs]
    if is_mudata(data):
        frames += [data.mod[name].obs for name in data.mod]
    for frame in frames:
        if clone_key in frame.columns:
            return frame[clone_key].reindex(cells)
    raise KeyError(
        f"No column {clone_key!r} in obs; define clonotypes first (scirpy: `ir.tl.define_clonotypes(adata)` "
        "writes 'clone_id'; in a MuData it reads 'airr:clone_id') or pass clone_key=<any obs column>."
    )


def _scirpy_record(data: Any, clone_key: str) -> dict | None:
    """Scirpy's ``uns[clone_key]`` (``distances`` over receptor configurations, ``cell_indices``)."""
    name = clone_key.split(":", 1)[-1]
    candidates = [data] + ([data.mod[m] for m in data.mod] if is_mudata(data) else [])
    for candidate in candidates:
        record = candidate.uns.get(name)
        if isinstance(record, dict) and "distances" in record and "cell_indices" in record:
            return record
    return None


def _configuration_graph(record: dict, cells: pd.Index) -> sp.csr_matrix:
    """Expand scirpy's configuration x configuration distances (distance + 1, 0 = not connected) to cells."""
    indices = record["cell_indices"]
    if isinstance(indices, str):  # scirpy >= 0.22 stores the mapping as JSON
        indices = json.loads(indices)
    position = {c: i for i, c in enumerate(cells)}
    rows, cols = [], []
    for configuration, members in indices.items():
        for cell in np.atleast_1d(members):
            if str(cell) in position:
                rows.append(int(configuration))
                cols.append(position[str(cell)])
    distances = sp.csr_matrix(record["distances"])
    membership = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(distances.shape[0], len(cells)))
    connected = (distances > 0).astype(np.float64) + sp.identity(distances.shape[0], format="csr")
    graph = membership.T @ (connected > 0).astype(np.float64) @ membership
    return sp.csr_matrix(graph)


@shared_docs
def build_clonotype_graph(
    adata: Any,
    clone_key: str = "clone_id",
    *,
    key_added: str = Key.CLONOTYPE,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Connect cells that share a clonotype (or a clonotype cluster) into a cells x cells graph.

    With scirpy's output (``ir.tl.define_clonotypes`` or ``ir.tl.define_clonotype_clusters``),
    ``uns[clone_key]['distances']`` over unique receptor configurations (0 = not connected) and
    ``uns[clone_key]['cell_indices']`` are expanded to cells: two cells are connected when their
    configurations are the same or connected. Otherwise any ``obs`` column works: cells with the
    same value are connected; cells with a missing value (no receptor) are isolated.
    Each cell's edges are weighted ``1 / (number of its neighbours)``, so every connected cell has
    total weight 1 and a large clone does not outweigh small ones.

    Parameters
    ----------
    adata
        AnnData, or a MuData (the scirpy layout: ``gex`` + ``airr``) with ``mod`` naming the
        modality that gets the graph (e.g. ``"gex"``); clone ids are read from the MuData's
        ``obs`` (``"airr:clone_id"``) or any modality.
    clone_key
        The clonotype column (scirpy: ``"clone_id"``, or the ``key_added`` of
        ``define_clonotype_clusters``).
    key_added
        The graph goes to ``obsp[key_added + '_connectivities']``.
    mod
        Modality of a MuData to write the graph into.
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``obsp[key_added + '_connectivities']`` (CSR, row sums 1
    for connected cells) and ``uns['gv'][key_added]`` (``clone_key``, ``n_connected_cells``,
    ``n_edges``).
    """
    started = time.perf_counter()
    target = resolve_modality(adata, mod)
    cells = target.obs_names
    record = _scirpy_record(adata, clone_key)
    if record is not None:
        graph = _configuration_graph(record, cells)
    else:
        clones = _clone_column(adata, clone_key, cells)
        codes, _ = pd.factorize(clones, use_na_sentinel=True)
        present = codes >= 0
        membership = sp.csr_matrix(
            (np.ones(present.sum()), (codes[present], np.flatnonzero(present))), shape=(codes.max() + 1, len(cells))
        )
        graph = sp.csr_matrix(membership.T @ membership)
    graph.setdiag(0)
    graph.eliminate_zeros()
    graph.data[:] = 1.0
    degree = np.asarray(graph.sum(axis=1)).ravel()
    graph = sp.csr_matrix(sp.diags(np.where(degree > 0, 1.0 / np.where(degree > 0, degree, 1), 0.0)) @ graph)

    record = {
        "kind": "cell_graph",
        "clone_key": clone_key,
        "source": "scirpy distances" if record is not None else "obs column",
        "n_connected_cells": int((degree > 0).sum()),
        "n_edges": int(graph.nnz),
    }
    obsp = {f"{key_added}{Key.CONNECTIVITIES_SUFFIX}": graph}
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, obsp=obsp)
