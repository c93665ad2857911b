"""Plots (matplotlib, scanpy style: ``ax=``, ``show=``, ``save=``, return Axes)."""

from __future__ import annotations

from ._coexpression import coexpression
from ._loss import loss
from ._maps import cell_map, gene_map
from ._programs import programs, similarity_heatmap

__all__ = ["cell_map", "coexpression", "gene_map", "loss", "programs", "similarity_heatmap"]
