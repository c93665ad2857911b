"""Datasets built offline: from files that installed packages ship, or generated with known truth."""

from __future__ import annotations

from ._annotations import gene_descriptions, hpo_gene_sets
from ._markers import pbmc_markers
from ._pbmc68k import pbmc68k
from ._regions import region_sets
from ._synthetic import synthetic

__all__ = ["gene_descriptions", "hpo_gene_sets", "pbmc68k", "pbmc_markers", "region_sets", "synthetic"]
