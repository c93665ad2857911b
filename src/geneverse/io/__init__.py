"""Tables in and out of AnnData: co-expression matrices and their strongest pairs."""

from __future__ import annotations

from ._coexpression import coexpression_frame, top_pairs, write_coexpression

__all__ = ["coexpression_frame", "top_pairs", "write_coexpression"]
