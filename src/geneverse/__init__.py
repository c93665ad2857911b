"""geneverse: gene embeddings from single-cell and spatial expression, for the scverse."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("geneverse")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from . import bench, cache, datasets, get, graphs, io, pl, regions, targets, tl, viewer

__all__ = [
    "__version__",
    "bench",
    "cache",
    "datasets",
    "get",
    "graphs",
    "io",
    "pl",
    "regions",
    "targets",
    "tl",
    "viewer",
]
