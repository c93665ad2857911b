"""The built-in targets: ``mi``, ``pearson``, ``spearman``, ``jaccard``, ``cosine``, ``cooccurrence``, ``ppmi``."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from .._core._chunks import CellChunks
from .._core._gram import (
    accumulate_gram,
    binary_transform,
    cooccurrence_from_gram,
    cosine_from_gram,
    jaccard_from_gram,
    pearson_from_gram,
    ppmi_from_cooccurrence,
    rank_transform,
)
from .._core._graph import check_graph, graph_cross_correlation, neighbour_operator
from .._core._mi import mutual_information
from .._utils import check_positive_int, resolve_device
from ._registry import Target, register_builtin


def _mi(
    chunks: CellChunks,
    gene_names: list[str],
    progress: Callable | None = None,
    *,
    n_bins: int = 10,
    signed: bool = True,
    include_double_zeros: bool = True,
    backend: str = "auto",
    device: str = "auto",
    block_size: int | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    if backend not in ("auto", "sparse", "torch"):
        raise ValueError(f"Unknown mi_backend {backend!r}; use 'auto', 'sparse' or 'torch'.")
    n_bins = check_positive_int("n_bins", n_bins)
    device = resolve_device(device) if backend != "sparse" else "cpu"
    if backend == "auto":
        # The sparse kernel does the least work on CPU; dense one-hot GEMMs win on a GPU.
        backend = "torch" if device.startswith("cuda") else "sparse"
    return mutual_information(
        chunks,
        n_bins=int(n_bins),
        signed=bool(signed),
        include_double_zeros=bool(include_double_zeros),
        backend=backend,
        device=device,
        block_size=block_size,
        n_jobs=n_jobs,
        progress=progress,
    )


def warn_zero_variance(values: np.ndarray, gene_names: list[str]) -> None:
    """Correlation targets define a zero-variance gene's row as 0; say so rather than hide it."""
    constant = np.flatnonzero(np.diag(values) == 0)
    if len(constant):
        examples = [gene_names[i] for i in constant[:5]]
        warnings.warn(
            f"{len(constant)} gene(s) have zero variance (e.g. {examples}); their correlation row and column are 0. "
            "Filter them first (e.g. `sc.pp.filter_genes(adata, min_cells=1)`) to drop them.",
            stacklevel=3,  # the caller of gv.tl.coexpression
        )


# Binned MI over few dense samples is noisy: on planted bulk-like data (docs/quality.md) programs ARI was
# 0.72 / 0.81 / 0.98 at 50 / 100 / 150 samples with `mi`, 0.93 / 0.995 / 1.00 with `pearson` on log-normalised values.
FEW_SAMPLES = 200
DENSE_FRACTION = 0.5


def _stored(chunk) -> int:
    return int(chunk.nnz)


def warn_bulk_like(chunks: CellChunks) -> None:
    """Warn when the input has few dense samples (bulk RNA-seq, for one), where the binned MI is noisy."""
    if chunks.n_cells >= FEW_SAMPLES or chunks.n_genes == 0:
        return
    fraction = chunks.map_reduce(_stored) / (chunks.n_cells * chunks.n_genes)  # chunks hold no explicit zeros
    if fraction >= DENSE_FRACTION:
        warnings.warn(
            f"Few dense samples, as in bulk RNA-seq: {chunks.n_cells} samples, {fraction:.0%} of the values nonzero. "
            f"Binned MI over fewer than {FEW_SAMPLES} samples gives noisy vectors (docs/quality.md, 50 bulk "
            "samples: the vectors' own programs reach ARI 0.70; refined against the expression, 0.96). For the "
            "vectors, use gv.tl.coexpression(adata, 'pearson') on log-normalised "
            "values (sc.pp.normalize_total, then sc.pp.log1p) instead.",
            stacklevel=3,  # the caller of gv.tl.coexpression
        )


def _pearson(chunks: CellChunks, gene_names: list[str], progress: Callable | None = None) -> np.ndarray:
    return pearson_from_gram(accumulate_gram(chunks, progress=progress))[0]


def _spearman(chunks: CellChunks, gene_names: list[str], progress: Callable | None = None) -> np.ndarray:
    return pearson_from_gram(accumulate_gram(chunks, rank_transform(chunks), progress))[0]


def _jaccard(chunks: CellChunks, gene_names: list[str], progress: Callable | None = None) -> np.ndarray:
    return jaccard_from_gram(accumulate_gram(chunks, binary_transform, progress))


def _cosine(chunks: CellChunks, gene_names: list[str], progress: Callable | None = None) -> np.ndarray:
    return cosine_from_gram(accumulate_gram(chunks, progress=progress))


def _cooccurrence(chunks: CellChunks, gene_names: list[str], progress: Callable | None = None) -> np.ndarray:
    return cooccurrence_from_gram(accumulate_gram(chunks, progress=progress))


def _ppmi(chunks: CellChunks, gene_names: list[str], progress: Callable | None = None) -> np.ndarray:
    return ppmi_from_cooccurrence(cooccurrence_from_gram(accumulate_gram(chunks, progress=progress)))


def _graph_xcorr(
    chunks: CellChunks,
    gene_names: list[str],
    progress: Callable | None = None,
    *,
    graph,
    aggr: str = "mean",
    include_self: bool = False,
    symmetrize: bool = True,
) -> np.ndarray:
    operator, isolated = neighbour_operator(graph, aggr, bool(include_self))
    if isolated.all():
        raise ValueError("Every cell is isolated in the graph (no edges); build a graph with neighbours.")
    if isolated.any():
        import warnings

        warnings.warn(
            f"{int(isolated.sum())} of {len(isolated)} cells have no neighbour in the graph and are left out.",
            stacklevel=4,
        )
    return graph_cross_correlation(chunks, operator, isolated, bool(symmetrize), progress)


def _resolve_graph(adata, params: dict) -> dict:
    """Replace an ``obsp`` key by its matrix and validate the graph against the cells."""
    graph = params["graph"]
    if isinstance(graph, str):
        if graph not in adata.obsp:
            raise KeyError(
                f"No cell graph obsp[{graph!r}]; build one with `squidpy.gr.spatial_neighbors(adata)` "
                "(or `gv.graphs.spatial_graph`), `gv.graphs.build_clonotype_graph(adata)`, or pass graph=<matrix>. "
                f"obsp keys: {list(adata.obsp.keys())}."
            )
        graph = adata.obsp[graph]
    return {**params, "graph": check_graph(graph, adata.n_obs)}


_MI_DEFAULTS = {
    "n_bins": 10,
    "signed": True,
    "include_double_zeros": True,
    "backend": "auto",
    "device": "auto",
    "block_size": None,
    "n_jobs": None,
}


def _mi_target(name: str, include_double_zeros: bool, description: str) -> Target:
    """The MI kernel as a target; the two built-in MI targets differ only in ``include_double_zeros``."""
    return Target(
        name,
        _mi,
        builtin=True,
        nonnegative=True,
        defaults={**_MI_DEFAULTS, "include_double_zeros": include_double_zeros},
        value_params=("n_bins", "signed", "include_double_zeros"),
        description=description,
        tool_params={"signed_mi": "signed", "mi_backend": "backend"},
        check_input=warn_bulk_like,
    )


for _target in (
    _mi_target("mi", True, "signed binned mutual information in bits over all cells (plug-in estimator)"),
    _mi_target(
        "genevector_mi",
        False,
        "GeneVector 1.0.0's estimator: signed binned MI, cells where both genes are zero left out",
    ),
    Target("pearson", _pearson, builtin=True, description="Pearson correlation over cells", check=warn_zero_variance),
    Target(
        "spearman",
        _spearman,
        builtin=True,
        description="Spearman rank correlation over cells (ties averaged)",
        check=warn_zero_variance,
    ),
    Target("jaccard", _jaccard, builtin=True, nonnegative=True, description="Jaccard index of detection (x > 0)"),
    Target("cosine", _cosine, builtin=True, description="cosine similarity of gene vectors over cells"),
    Target(
        "cooccurrence",
        _cooccurrence,
        builtin=True,
        nonnegative=True,
        description="exp2vec's term co-occurrence X.T @ X, diagonal (diag - colsums) / 2",
    ),
    Target("ppmi", _ppmi, builtin=True, nonnegative=True, description="positive PMI of the co-occurrence matrix"),
    Target(
        "graph_xcorr",
        _graph_xcorr,
        builtin=True,
        defaults={"graph": "spatial_connectivities", "aggr": "mean", "include_self": False, "symmetrize": True},
        value_params=("graph", "aggr", "include_self", "symmetrize"),
        description="correlation of each gene in a cell with every gene over its graph neighbours",
        resolve=_resolve_graph,
    ),
):
    register_builtin(_target)
