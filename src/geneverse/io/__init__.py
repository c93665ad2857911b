"""Tables and embeddings in and out of AnnData."""

from __future__ import annotations

from .._files import write_h5ad
from ._coexpression import coexpression_frame, compact_coexpression, top_pairs, write_coexpression
from ._embeddings import read_embeddings, write_embeddings
from ._markdown import to_markdown
from ._network import network_edges, write_network

__all__ = [
    "coexpression_frame",
    "compact_coexpression",
    "network_edges",
    "read_embeddings",
    "to_markdown",
    "top_pairs",
    "write_coexpression",
    "write_embeddings",
    "write_h5ad",
    "write_network",
]
