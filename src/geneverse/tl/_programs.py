"""``gv.tl.programs`` and ``gv.tl.score_programs``: gene programs and their per-cell scores."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._core._chunks import CellChunks
from .._core._programs import (
    LEIDEN_ITERATIONS,
    central_order,
    cosine_knn_graph,
    expression_bins,
    kmeans,
    leiden,
    relabel_by_size,
    score_weights,
)
from .._core._refine import MAX_ROUNDS, MEMBER_THRESHOLD, THRESHOLD, refine_programs
from .._core._search import valid_rows
from .._data import gene_vectors, recorded_layer, training_coexpression, write_result
from .._data import programs as get_programs
from .._docs import shared_docs
from .._keys import Key
from .._utils import (
    check_positive_int,
    check_seed,
    get_expression,
    progress_bar,
    renamed_parameters,
    resolve_modality,
)

PROGRAM_METHODS = ("leiden", "kmeans")


@renamed_parameters(key="vectors_key")
@shared_docs
def programs(
    adata: Any,
    vectors_key: str = Key.GENE_VECTORS,
    *,
    method: str = "leiden",
    resolution: float = 1.5,
    n_neighbors: int = 15,
    n_clusters: int | None = None,
    seed: int = 0,
    refine: bool | None = None,
    layer: str | None = None,
    key_added: str = Key.PROGRAMS,
    chunk_size: int = 50_000,
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Cluster genes into programs by their vectors, then refine them against the expression.

    ``method="leiden"`` builds a kNN graph of the genes by cosine similarity (weights = cosine,
    clipped at 0, symmetrised) and runs Leiden (leidenalg's RB configuration model, two
    iterations, as ``sc.tl.leiden(flavor="igraph")``); ``method="kmeans"`` runs k-means on
    unit-length vectors (exp2vec's choice).
    With ``refine``, the clusters are the start of a few rounds in which each gene joins the program
    whose activity (the summed standardised expression of the program's core genes in each cell) it
    correlates with most, if that correlation is at least 2 standard errors (``2 / sqrt(n_cells)``)
    above 0; other genes keep their cluster. A program's core, which scores it in the next round, is
    its genes at 3 standard errors or more (at most 5 rounds, one pass over the cells each, then one
    to score the final programs). A program's activity averages many genes, so it is far
    less noisy than the gene pairs behind the vectors. Over the quality matrix's single-cell
    settings (same vectors, same run) the median program ARI rose from 0.96 to 0.99 and the weakest
    settings gained most: 500 cells 0.46 to 0.72, 10-gene programs 0.86 to 0.97, depth 0.03 0.79 to
    0.88; bulk with 50 samples 0.70 to 0.97 (``docs/quality.md``).
    Programs are named ``P0``, ``P1``, ... from the largest down. Within a program, genes come most
    central first: by their correlation with the program's activity when refined, by cosine to the
    program's mean direction otherwise.

    Parameters
    ----------
    {doc_adata_vectors}
    vectors_key
        ``varm`` key of the vectors (trained or imported); genes without a vector get no program.
    method
        ``"leiden"`` or ``"kmeans"``.
    resolution
        Leiden resolution: higher gives more, smaller programs. 1.5 by default, chosen from the
        quality matrix (``docs/quality.md``): over the single-cell settings it raised the median
        program ARI from 0.89 to 0.97 (overlapping programs 0.80 to 0.97, 300 genes 0.88 to
        0.95) and cost at most 0.01 where programs are large and few; at 2.0 low-depth data lose.
    n_neighbors
        Neighbours per gene in the Leiden graph.
    n_clusters
        Number of programs for k-means (required there).
    seed
        Random seed of Leiden / k-means.
    refine
        Refine the clusters against the expression (see above). ``None`` (default): when the vectors
        were trained by :func:`embed` on a co-expression of this object whose record names its layer,
        so that its cells are the data the vectors came from, or when ``layer`` is given; imported or
        text-derived vectors are left as clustered. ``True`` refines against ``layer`` (or ``X``).
    layer
        Expression to refine against: counts (non-negative integers) are taken as Poisson residuals,
        ``(x - t p) / sqrt(t p)`` for the cell's total ``t`` and the gene's share ``p`` of all counts
        (over the genes with a vector); other values are used as given. Default: the layer the
        co-expression was computed from (its record), else ``X``.
    key_added
        ``var`` column and ``uns['gv']`` key.
    {doc_chunk_size}
    progress
        Show progress bars over the blocks of the kNN graph (20,000 genes: about 3.5 s of the 7 s;
        Leiden itself shows none) and over the refinement rounds (one pass over the cells each).
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``var[key_added]`` (categorical, NaN for genes without a
    vector) and ``uns['gv'][key_added]`` with ``programs`` (name -> genes, central first),
    ``centrality`` (name -> each gene's activity correlation or cosine, as ``centrality_by`` says),
    ``method``, ``params``,
    ``embedding_key``, ``refined`` and, when refined, ``refinement``: the ``layer`` (``"None"``:
    ``X``), the ``rounds`` run, whether they ``converged``, the genes ``moved`` from their cluster,
    the ``core`` genes (at ``threshold`` standard errors), whether the values were ``counts`` (taken
    as Poisson residuals), the ``threshold``, the ``member_threshold`` to join a program and
    ``max_rounds``.
    """
    started = time.perf_counter()
    seed = check_seed(seed)
    modality = resolve_modality(adata, mod)
    if method not in PROGRAM_METHODS:
        raise ValueError(f"Unknown method {method!r}; use one of {PROGRAM_METHODS}.")
    vectors = gene_vectors(modality, vectors_key)
    usable = np.flatnonzero(valid_rows(vectors))
    if len(usable) < 2:
        raise ValueError(f"varm[{vectors_key!r}] has fewer than 2 genes with usable vectors; nothing to cluster.")
    check_positive_int("chunk_size", chunk_size)
    source = _refinement_source(modality, vectors_key, refine, layer)
    if method == "leiden":
        check_positive_int("n_neighbors", n_neighbors)
        if not np.isfinite(resolution) or resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution!r}.")
        graph = cosine_knn_graph(vectors[usable], int(n_neighbors), progress=progress_bar(progress, "programs"))
        labels = leiden(graph, float(resolution), int(seed))
        params = {
            "resolution": float(resolution),
            "n_neighbors": int(n_neighbors),
            "n_iterations": LEIDEN_ITERATIONS,
            "seed": int(seed),
        }
    else:
        if not isinstance(n_clusters, int | np.integer) or not 1 <= n_clusters <= len(usable):
            raise ValueError(f"method='kmeans' needs n_clusters between 1 and {len(usable)}, got {n_clusters!r}.")
        labels = kmeans(vectors[usable], int(n_clusters), int(seed))
        params = {"n_clusters": int(n_clusters), "seed": int(seed)}
    refinement, activity = None, None
    if source is not None:
        matrix, name, used_layer = source
        chunks = CellChunks(matrix, chunk_size=chunk_size, columns=usable, source_name=name)
        bar = progress_bar(progress, "refine programs")
        labels, activity, refinement = refine_programs(chunks, labels, progress=bar)
        refinement = {
            "layer": used_layer,
            **refinement,
            "threshold": THRESHOLD,
            "member_threshold": MEMBER_THRESHOLD,
            "max_rounds": MAX_ROUNDS,
        }
    labels = relabel_by_size(labels)
    names = [f"P{i}" for i in range(labels.max() + 1)]
    gene_lists, centrality = {}, {}
    for i, name in enumerate(names):
        if activity is None:
            members, closeness = central_order(vectors, usable[labels == i])
        else:  # refined: the genes that follow the program's activity best come first
            inside = np.flatnonzero(labels == i)
            order = np.lexsort((inside, -activity[inside]))
            members, closeness = usable[inside[order]], activity[inside[order]]
        gene_lists[name] = np.asarray(modality.var_names[members], dtype=object)
        centrality[name] = closeness.astype(np.float64)
    column = np.full(modality.n_vars, None, dtype=object)
    column[usable] = [names[i] for i in labels]

    record = {
        "kind": "programs",
        "method": method,
        "params": params,
        "embedding_key": vectors_key,
        "programs": gene_lists,
        "centrality": centrality,
        "centrality_by": "cosine" if activity is None else "activity correlation",
        "refined": refinement is not None,
    }
    if refinement is not None:
        record["refinement"] = refinement
    var = {key_added: pd.Categorical(column, categories=names)}
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, var=var)


def _refinement_source(
    modality: Any, vectors_key: str, refine: bool | None, layer: str | None
) -> tuple[Any, str, str | None] | None:
    """The expression to refine programs against (matrix, its name, the layer), or ``None`` for no refinement."""
    if refine is not None and not isinstance(refine, bool | np.bool_):
        raise TypeError(f"refine must be True, False or None, got {refine!r}.")
    if refine is not None and not refine:
        return None
    if refine is None and layer is not None:
        refine = True  # naming the expression asks for the refinement
    coexpression = training_coexpression(modality, vectors_key)
    if layer is None and coexpression is not None:
        layer = recorded_layer(modality, vectors_key)
        if layer is not None and layer not in modality.layers:
            if refine is None:
                warnings.warn(
                    f"The co-expression behind varm[{vectors_key!r}] was computed from layers[{layer!r}], which is "
                    "gone; the programs are not refined. Pass `layer=` (or `refine=False`) to choose.",
                    stacklevel=4,  # _refinement_source < programs < its renamed_parameters wrapper < the caller
                )
                return None
            raise KeyError(
                f"The co-expression behind varm[{vectors_key!r}] was computed from layers[{layer!r}], which is "
                f"gone; pass `layer=` naming the expression to refine against. Layers: {list(modality.layers)}."
            )
    if refine is None and coexpression is None:
        return None
    if modality.n_obs < 3:
        if refine is None:
            return None
        raise ValueError(f"Refining programs needs cells; this object has {modality.n_obs}. Pass refine=False.")
    matrix, name = get_expression(modality, layer)
    return matrix, name, layer


def _program_genes(adata, programs: str | Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if isinstance(programs, str):
        programs = get_programs(adata, programs)
    if not isinstance(programs, Mapping) or not programs:
        raise ValueError("programs must be a uns key written by gv.tl.programs or a non-empty dict name -> genes.")
    out = {}
    for name, genes in programs.items():
        genes = [str(g) for g in np.asarray(genes).ravel()]
        missing = [g for g in genes if g not in adata.var_names]
        if missing:
            raise KeyError(f"Program {name!r} names genes not in var_names: {missing[:10]}.")
        if not genes:
            raise ValueError(f"Program {name!r} has no genes.")
        out[str(name)] = genes
    return out


def _column_sums(chunk: sp.csr_matrix) -> np.ndarray:
    return np.asarray(chunk.sum(axis=0)).ravel()


def _chunk_scores(chunk: sp.csr_matrix, weights: np.ndarray) -> np.ndarray:
    return np.asarray(chunk @ weights)


def _gene_means(chunks: CellChunks) -> np.ndarray:
    return chunks.map_reduce(_column_sums) / chunks.n_cells


@shared_docs
def score_programs(
    adata: Any,
    programs: str | Mapping[str, Sequence[str]] = Key.PROGRAMS,
    *,
    layer: str | None = None,
    ctrl_size: int = 50,
    n_bins: int = 25,
    seed: int = 0,
    key_added: str = Key.SCORES,
    chunk_size: int = 20_000,
    progress: bool = True,
    mod: str | None = None,
    copy: bool = False,
) -> Any:
    """Score every cell for every program: mean expression of its genes minus a matched background.

    As ``sc.tl.score_genes``: genes are binned into ``n_bins`` by mean expression; for each bin that
    holds program genes, ``ctrl_size`` control genes are drawn from that bin (outside the
    program); the score is the mean of the program's genes minus the mean of its controls, so
    programs of highly expressed genes do not win by level alone. All programs are scored in one
    sparse product per chunk of cells. ``ctrl_size=0`` gives the plain mean.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``); use log-normalised expression (``X`` or ``layer``).
    programs
        A ``uns['gv']`` key written by :func:`programs` (default ``"gv_program"``) or a dict of
        program name -> genes.
    {doc_layer}
    ctrl_size
        Control genes drawn per expression bin of the program's genes.
    n_bins
        Number of expression bins.
    seed
        Seed of the control draws.
    key_added
        ``obsm`` and ``uns['gv']`` key.
    {doc_chunk_size}
    progress
        Show a progress bar over chunks.
    {doc_mod}
    {doc_copy}

    Returns
    -------
    ``None``, or the modified copy. Writes ``obsm[key_added]`` (DataFrame, cells x programs) and
    ``uns['gv'][key_added]`` with the parameters and each program's control genes.
    """
    started = time.perf_counter()
    seed = check_seed(seed)
    modality = resolve_modality(adata, mod)
    genes_of = _program_genes(modality, programs)
    if not isinstance(ctrl_size, int | np.integer) or ctrl_size < 0:
        raise ValueError(f"ctrl_size must be a non-negative integer, got {ctrl_size!r}.")
    check_positive_int("n_bins", n_bins)
    matrix, source = get_expression(modality, layer)
    chunks = CellChunks(matrix, chunk_size=chunk_size, source_name=source)
    means = _gene_means(chunks)
    bins = expression_bins(means, int(n_bins))
    position = {g: i for i, g in enumerate(modality.var_names)}
    members = [np.array([position[g] for g in genes]) for genes in genes_of.values()]
    weights, chosen = score_weights(members, bins, int(ctrl_size), np.random.default_rng(seed))
    controls = {name: np.asarray(modality.var_names[c], dtype=object) for name, c in zip(genes_of, chosen, strict=True)}
    # one sparse x dense product per chunk scores every program at once
    values = chunks.map_concat(partial(_chunk_scores, weights=weights), progress_bar(progress, "score programs"))
    scores = pd.DataFrame(values, index=modality.obs_names.copy(), columns=list(genes_of))

    record = {
        "kind": "program_scores",
        "programs": programs if isinstance(programs, str) else "user",
        "params": {"layer": layer, "ctrl_size": int(ctrl_size), "n_bins": int(n_bins), "seed": int(seed)},
        "controls": controls,
    }
    return write_result(adata, key_added, record, mod=mod, copy=copy, started=started, obsm={key_added: scores})
