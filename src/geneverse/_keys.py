"""Every default key geneverse reads and writes, in one place (as squidpy's ``Key``).

A tool writes under ``key_added`` (default below) and records its parameters in
``adata.uns[Key.UNS][key_added]``; the tools, plots, getters, CLI and viewer that read a result
take the same default, so a pipeline run with defaults finds each result without naming it.

=========================  ==========  =========================================================
default                    slot        written by
=========================  ==========  =========================================================
``gv_<target>``            ``varp``    :func:`geneverse.tl.coexpression` (``gv_mi`` by default)
``X_gv``                   ``varm``    :func:`geneverse.tl.embed` (gene vectors)
``X_gv_cells``             ``obsm``    :func:`geneverse.tl.cell_embed` (cell vectors)
``gv_program``             ``var``     :func:`geneverse.tl.programs` (column, and its record)
``gv_programs``            ``obsm``    :func:`geneverse.tl.score_programs` (cells x programs)
``gv_cell_type``           ``obs``     :func:`geneverse.tl.annotate` (and ``obsm`` ``_probabilities``)
``X_gv_corrected``         ``obsm``    :func:`geneverse.tl.batch_correct` (batch-corrected cell vectors)
``gv_network``             ``varp``    :func:`geneverse.tl.gene_network` (``_connectivities``)
``X_genept``               ``varm``    :func:`geneverse.tl.text_embed`
``X_bedspace``             ``varm``    :func:`geneverse.regions.train` (and ``obsm`` for sets)
``X_emb``                  ``varm``    :func:`geneverse.io.read_embeddings` (imported vectors)
``<vectors>_umap``         ``varm``    :func:`geneverse.pl.gene_map` (the 2-D layout, reused by the explorer)
``clonotype``              ``obsp``    :func:`geneverse.graphs.build_clonotype_graph` (``_connectivities``)
=========================  ==========  =========================================================
"""

from __future__ import annotations


class Key:
    """Default keys of geneverse's results."""

    #: ``adata.uns`` entry holding every result's record.
    UNS = "gv"
    #: Default co-expression target, and its ``varp`` key.
    TARGET = "mi"
    COEXPRESSION = "gv_mi"
    #: Gene vectors in ``varm``.
    GENE_VECTORS = "X_gv"
    #: Cell vectors in ``obsm`` (distinct from the gene vectors' name, so neither record shadows the other).
    CELL_VECTORS = "X_gv_cells"
    CELL_RECORD_SUFFIX = "_cells"
    #: Gene programs: a ``var`` column and its record.
    PROGRAMS = "gv_program"
    #: Program scores per cell: a DataFrame in ``obsm``.
    SCORES = "gv_programs"
    #: Cell types from markers: an ``obs`` column; probabilities in ``obsm[CELL_TYPE + PROBABILITIES_SUFFIX]``.
    CELL_TYPE = "gv_cell_type"
    PROBABILITIES_SUFFIX = "_probabilities"
    #: Batch-corrected cell vectors in ``obsm``.
    CORRECTED = "X_gv_corrected"
    #: Gene network: ``varp[NETWORK + "_connectivities"]`` and its record.
    NETWORK = "gv_network"
    CONNECTIVITIES_SUFFIX = "_connectivities"
    #: Text-derived gene vectors in ``varm``.
    TEXT_VECTORS = "X_genept"
    #: BEDspace region (``varm``) and set (``obsm``) vectors.
    BEDSPACE = "X_bedspace"
    #: Imported gene vectors in ``varm``.
    IMPORTED_VECTORS = "X_emb"
    #: Clonotype cell graph (``obsp[CLONOTYPE + "_connectivities"]``).
    CLONOTYPE = "clonotype"
    #: Spatial cell graph that ``graph_xcorr`` reads by default (squidpy's key).
    SPATIAL_GRAPH = "spatial_connectivities"

    @staticmethod
    def coexpression(target: str) -> str:
        """The ``varp`` key of a co-expression target (``gv_<target>``)."""
        return f"gv_{target}"

    @staticmethod
    def gene_layout(vectors_key: str, method: str) -> str:
        """The ``varm`` key (and record) of a gene map's 2-D layout: ``<vectors_key>_<method>``."""
        return f"{vectors_key}_{method}"

    @staticmethod
    def cell_record(key: str) -> str:
        """The ``uns`` record of cell vectors stored in ``obsm[key]``: ``key``, with ``_cells`` added if missing.

        The suffix keeps a cell record from replacing a gene embedding's record of the same name
        (``cell_embed(adata, key_added="X_gv")`` records under ``X_gv_cells``).
        """
        return key if key.endswith(Key.CELL_RECORD_SUFFIX) else f"{key}{Key.CELL_RECORD_SUFFIX}"
