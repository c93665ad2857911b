"""Plots (matplotlib, scanpy style: ``ax=``, ``show=``, ``save=``, return Axes)."""

from __future__ import annotations

from ._cells import batch_mixing, cell_type_probabilities, confusion
from ._coexpression import coexpression
from ._loss import loss
from ._maps import cell_map, gene_map
from ._network import gene_network
from ._programs import programs, similarity_heatmap

__all__ = [
    "batch_mixing",
    "cell_map",
    "cell_type_probabilities",
    "coexpression",
    "confusion",
    "gene_map",
    "gene_network",
    "loss",
    "programs",
    "similarity_heatmap",
]
