"""Plots (matplotlib, scanpy style: ``ax=``, ``show=``, ``save=``, return Axes)."""

from __future__ import annotations

from ._coexpression import coexpression
from ._loss import loss
from ._programs import gene_map, programs, similarity_heatmap

__all__ = ["coexpression", "gene_map", "loss", "programs", "similarity_heatmap"]
