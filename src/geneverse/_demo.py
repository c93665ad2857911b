"""``geneverse demo``: the main job on the bundled pbmc68k data, with readable output."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pandas as pd

#: Well-known PBMC markers whose strongest MI partners the demo reports, when present.
MARKERS = ("CD3D", "MS4A1", "CD79A", "NKG7", "GNLY", "LYZ", "S100A8", "FCGR3A", "PPBP", "HLA-DRA")
#: MS4A1 - CD79A + CD3E: from a B-cell marker and its receptor chain over to the T-cell side.
ANALOGY = ("MS4A1", "CD79A", "CD3E")
PAIR_QUERY = ("MS4A1", "CD3E")


def _partners(frames: dict[str, pd.DataFrame], genes: list[str], n: int = 5) -> pd.DataFrame:
    """Each gene's ``n`` strongest partners under each co-expression matrix in ``frames``."""
    rows = []
    for gene in genes:
        row = {"gene": gene}
        for label, frame in frames.items():
            scores = frame.loc[gene].drop(gene).sort_values(ascending=False).head(n)
            row[label] = ", ".join(f"{g} ({v:.2f})" for g, v in scores.items())
        rows.append(row)
    return pd.DataFrame(rows)


def run_demo(out_dir: str | Path = "demo_output", *, progress: bool = True, use_cache: bool = True) -> dict:
    """The main job on pbmc68k: co-expression, a gene embedding and queries on it.

    Signed MI on counts (the plug-in default and GeneVector's estimator) and Pearson on
    log-normalised data; a GeneVector embedding of the MI; nearest genes of PBMC markers, an
    analogy and an exact pair search; gene programs, their scores per cell and a cell embedding
    from the gene vectors.
    Writes into ``out_dir``: ``top_pairs_mi.tsv``, ``marker_partners.tsv``, ``coexpression_mi.tsv``
    (genes x genes), ``coexpression_mi.png`` and ``coexpression_genevector_mi.png`` (heatmaps),
    ``embedding_neighbours.tsv``, ``embedding_report.md``, ``embedding_loss.png``,
    ``gene_vectors.txt`` (word2vec format), ``programs.tsv``, ``program_by_population.tsv``,
    ``cell_types_by_population.tsv`` (cell types from the shipped markers per FACS population),
    ``gene_map.png``, ``program_scores.png`` and ``pbmc68k_geneverse.h5ad``.

    Parameters
    ----------
    out_dir
        Output folder (created).
    progress
        Show progress bars.
    use_cache
        Read and write the co-expression cache.

    Returns
    -------
    Paths written and the tables, keyed by name.
    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    import geneverse as gv

    from ._files import write_h5ad, write_table, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    adata = gv.datasets.pbmc68k()
    print(f"pbmc68k: {adata.n_obs} cells x {adata.n_vars} genes, raw counts in layers['counts']")

    started = time.perf_counter()
    gv.tl.coexpression(adata, "mi", layer="counts", progress=progress, use_cache=use_cache)
    mi_seconds = time.perf_counter() - started
    cached = " (from cache)" if gv.get.record(adata, "gv_mi")["from_cache"] else ""
    print(f"signed mutual information, {adata.n_vars}x{adata.n_vars} genes: {mi_seconds:.2f} s{cached}")
    # GeneVector's own estimator, for comparison: the cells where both genes are zero left out.
    gv.tl.coexpression(adata, "genevector_mi", layer="counts", progress=progress, use_cache=use_cache)
    gv.tl.coexpression(adata, "pearson", progress=progress, use_cache=use_cache)

    pairs = gv.io.top_pairs(adata, "gv_mi", n=15, absolute=False)
    pearson = gv.get.coexpression(adata, "gv_pearson")
    pairs["pearson_lognorm"] = [pearson.at[a, b] for a, b in zip(pairs.gene_a, pairs.gene_b, strict=True)]
    frames = {
        "mi": gv.get.coexpression(adata, "gv_mi"),
        "genevector_mi": gv.get.coexpression(adata, "gv_genevector_mi"),
    }
    markers = [g for g in MARKERS if g in adata.var_names]
    partners = _partners(frames, markers)

    with pd.option_context("display.width", 120, "display.max_colwidth", 90):
        print("\nStrongest co-expressed gene pairs (signed MI, bits):")
        print(pairs.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("\nStrongest MI partners of PBMC markers (the default plug-in MI over all cells finds the known")
        print("partners; GeneVector's estimator drops cells where both genes are zero, which favours rare genes):")
        print(partners.to_string(index=False))

    started = time.perf_counter()
    gv.tl.embed(adata, "gv_mi", progress=progress)
    record = gv.get.record(adata, "X_gv")
    print(
        f"\nGeneVector embedding of the signed MI: {record['epochs_run']} epochs, "
        f"{time.perf_counter() - started:.1f} s, final loss {record['final_loss']:.4g} (varm['X_gv'], 50 dims)"
    )
    neighbours = pd.DataFrame(
        {"gene": markers, "nearest_genes": [", ".join(gv.tl.similar(adata, g, n=5).gene) for g in markers]}
    )
    analogy = gv.tl.analogy(adata, *ANALOGY, n=5)
    pairs_like = gv.tl.similar_pairs(adata, *PAIR_QUERY, n=5, progress=progress)
    with pd.option_context("display.width", 120, "display.max_colwidth", 90):
        print("\nNearest genes in the embedding (cosine):")
        print(neighbours.to_string(index=False))
        print(f"\nAnalogy {ANALOGY[0]} - {ANALOGY[1]} + {ANALOGY[2]} (B-cell marker - BCR chain + T-cell marker):")
        print(analogy.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"\nGene pairs (x, y) whose difference points like {PAIR_QUERY[0]} - {PAIR_QUERY[1]} (exact search):")
        print(pairs_like.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

    # Programs of genes, their scores per cell, and cells embedded by their genes' vectors.
    gv.tl.programs(adata, progress=progress)
    gv.tl.score_programs(adata, progress=progress)
    gv.tl.cell_embed(adata, layer="counts", progress=progress)  # TF-IDF weights of the counts
    gv.tl.annotate(adata, gv.datasets.pbmc_markers(), progress=progress)  # shipped literature markers
    cell_types = pd.crosstab(adata.obs["bulk_labels"], adata.obs["gv_cell_type"])
    sc.pp.neighbors(adata, use_rep="X_gv_cells", n_neighbors=15, random_state=0)
    with warnings.catch_warnings():  # umap-learn notes that a seed means one thread
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        sc.tl.umap(adata, random_state=0)
    programs = gv.get.programs(adata)
    program_table = pd.DataFrame(
        {
            "program": list(programs),
            "n_genes": [len(genes) for genes in programs.values()],
            "central_genes": [", ".join(list(genes)[:6]) for genes in programs.values()],
        }
    )
    mean_scores = gv.get.program_scores(adata).groupby(adata.obs["bulk_labels"].to_numpy()).mean()
    best = pd.DataFrame(
        {"bulk_label": mean_scores.index, "top_program": mean_scores.idxmax(axis=1).to_numpy(),
         "mean_score": mean_scores.max(axis=1).to_numpy()}
    )  # fmt: skip
    with pd.option_context("display.width", 120, "display.max_colwidth", 80):
        print(f"\nGene programs (Leiden on the gene vectors): {len(programs)}")
        print(program_table.to_string(index=False))
        print("\nHighest-scoring program per FACS population (bulk_labels):")
        print(best.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        print("\nCell types from markers (gv.tl.annotate, gv.datasets.pbmc_markers) per FACS population:")
        print(cell_types.to_string())

    paths = {
        "top_pairs": out / "top_pairs_mi.tsv",
        "marker_partners": out / "marker_partners.tsv",
        "matrix": out / "coexpression_mi.tsv",
        "heatmap": out / "coexpression_mi.png",
        "heatmap_genevector": out / "coexpression_genevector_mi.png",
        "neighbours": out / "embedding_neighbours.tsv",
        "programs": out / "programs.tsv",
        "program_by_population": out / "program_by_population.tsv",
        "cell_types": out / "cell_types_by_population.tsv",
        "gene_map": out / "gene_map.png",
        "program_scores": out / "program_scores.png",
        "report": out / "embedding_report.md",
        "loss": out / "embedding_loss.png",
        "vectors": out / "gene_vectors.txt",
        "h5ad": out / "pbmc68k_geneverse.h5ad",
    }
    # every file is written atomically: an interrupted demo leaves earlier outputs whole
    write_table(neighbours, paths["neighbours"], sep="\t", index=False)
    write_text(
        paths["report"],
        f"# geneverse demo: pbmc68k\n\n## Analogy {' - '.join(ANALOGY[:2])} + {ANALOGY[2]}\n\n"
        + gv.io.to_markdown(analogy, adata)
        + f"\n## Pairs like {PAIR_QUERY[0]} - {PAIR_QUERY[1]}\n\n"
        + gv.io.to_markdown(pairs_like),
    )
    gv.io.write_embeddings(adata, paths["vectors"])
    write_table(program_table, paths["programs"], sep="\t", index=False)
    write_table(best, paths["program_by_population"], sep="\t", index=False)
    write_table(cell_types, paths["cell_types"], sep="\t")
    ax = gv.pl.gene_map(adata, show=False, save=paths["gene_map"], progress=progress)
    plt.close(ax.figure)
    axes = gv.pl.programs(adata, show=False, save=paths["program_scores"])
    plt.close(axes[0, 0].figure)
    ax = gv.pl.loss(adata, show=False, save=paths["loss"])
    plt.close(ax.figure)
    write_table(pairs, paths["top_pairs"], sep="\t", index=False)
    write_table(partners, paths["marker_partners"], sep="\t", index=False)
    gv.io.write_coexpression(adata, paths["matrix"], "gv_mi")
    for key, path in (("gv_mi", paths["heatmap"]), ("gv_genevector_mi", paths["heatmap_genevector"])):
        ax = gv.pl.coexpression(adata, key, n_genes=40, show=False, save=path)
        plt.close(ax.figure)
    write_h5ad(adata, paths["h5ad"])
    print(f"\nWrote {', '.join(p.name for p in paths.values())} to {out.resolve()}")
    print(f"Browse the gene vectors (search, gene map, analogies, pairs): geneverse explore {paths['h5ad']}")
    return {
        "paths": paths,
        "top_pairs": pairs,
        "marker_partners": partners,
        "neighbours": neighbours,
        "analogy": analogy,
        "pairs_like": pairs_like,
        "programs": program_table,
        "program_by_population": best,
        "cell_types": cell_types,
    }
