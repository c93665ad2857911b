"""Regions (BEDspace): joint embeddings of genomic region sets and their labels, in torch.

``tokenize`` maps region sets (BED files, DataFrames, or the cells of an ATAC modality) onto a
universe; ``train`` learns region and label vectors (StarSpace ``trainMode 0``); ``search``
answers region-set -> label (``r2l``), label -> region sets (``l2r``) and set -> set (``r2r``)
queries; ``distances`` gives the full matrices. No external binary is needed.
"""

from __future__ import annotations

from ._bedspace import distances, search, train
from ._tokenize import parse_peaks, read_bed, tokenize

__all__ = ["distances", "parse_peaks", "read_bed", "search", "tokenize", "train"]
