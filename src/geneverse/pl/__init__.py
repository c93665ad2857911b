"""Plots (matplotlib, scanpy style: ``ax=``, ``show=``, ``save=``, return Axes)."""

from __future__ import annotations

from ._coexpression import coexpression
from ._loss import loss

__all__ = ["coexpression", "loss"]
