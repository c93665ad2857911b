"""The built-in targets: ``mi``, ``pearson``, ``spearman``, ``jaccard``, ``cosine``, ``cooccurrence``, ``ppmi``."""

from __future__ import annotations

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
from .._core._mi import mutual_information
from .._utils import resolve_device
from ._registry import Target, register_builtin


def _mi(
    chunks: CellChunks,
    progress: Callable | None = None,
    *,
    n_bins: int = 10,
    signed: bool = True,
    include_double_zeros: bool = False,
    backend: str = "auto",
    device: str = "auto",
    block_size: int | None = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    if backend not in ("auto", "sparse", "torch"):
        raise ValueError(f"Unknown mi_backend {backend!r}; use 'auto', 'sparse' or 'torch'.")
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
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


def _pearson(chunks: CellChunks, progress: Callable | None = None) -> np.ndarray:
    return pearson_from_gram(accumulate_gram(chunks, progress=progress))[0]


def _spearman(chunks: CellChunks, progress: Callable | None = None) -> np.ndarray:
    return pearson_from_gram(accumulate_gram(chunks, rank_transform(chunks), progress))[0]


def _jaccard(chunks: CellChunks, progress: Callable | None = None) -> np.ndarray:
    return jaccard_from_gram(accumulate_gram(chunks, binary_transform, progress))


def _cosine(chunks: CellChunks, progress: Callable | None = None) -> np.ndarray:
    return cosine_from_gram(accumulate_gram(chunks, progress=progress))


def _cooccurrence(chunks: CellChunks, progress: Callable | None = None) -> np.ndarray:
    return cooccurrence_from_gram(accumulate_gram(chunks, progress=progress))


def _ppmi(chunks: CellChunks, progress: Callable | None = None) -> np.ndarray:
    return ppmi_from_cooccurrence(cooccurrence_from_gram(accumulate_gram(chunks, progress=progress)))


_MI_DEFAULTS = {
    "n_bins": 10,
    "signed": True,
    "include_double_zeros": False,
    "backend": "auto",
    "device": "auto",
    "block_size": None,
    "n_jobs": None,
}

for _target in (
    Target(
        "mi",
        _mi,
        builtin=True,
        nonnegative=True,
        defaults=_MI_DEFAULTS,
        value_params=("n_bins", "signed", "include_double_zeros"),
        description="signed binned mutual information in bits (GeneVector's estimator)",
    ),
    Target("pearson", _pearson, builtin=True, description="Pearson correlation over cells"),
    Target("spearman", _spearman, builtin=True, description="Spearman rank correlation over cells (ties averaged)"),
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
):
    register_builtin(_target)
