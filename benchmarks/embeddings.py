"""Gene and cell embeddings compared on real labels: MI (GeneVector model), GloVe, GenePT, PCA, random.

`make bench-embeddings`. Two datasets that installed packages ship: pbmc68k (scanpy; 700 PBMCs,
10 FACS populations in `bulk_labels`) and scirpy's wu2020 subset (150 T cells with expression,
16 published clusters in `cluster_orig`). For each:

- gene level (`gv.bench.gene_set_auroc`): 5-fold cross-validated AUROC of predicting HPO gene-set
  membership (`gv.datasets.hpo_gene_sets`, the 40 largest sets among the dataset's genes) from each
  gene embedding: `X_gv` (MI + GeneVector model), `X_glove` (co-occurrence + GloVe), `X_genept`
  (all-MiniLM-L6-v2 on `gv.datasets.gene_descriptions`), PCA loadings, random vectors;
- cell level (`gv.bench.cell_scores`): k-means and Leiden ARI/AMI and 10-NN label accuracy of
  `cell_embed` from each gene embedding, GenePT-w (text vectors weighted by log-normalised
  expression), GenePT-s (cell sentences), PCA-50 and random vectors.

One table; timings of each step; results in benchmarks/results/embeddings.json.
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")


def pbmc68k():
    import geneverse as gv

    adata = gv.datasets.pbmc68k()
    return adata, "bulk_labels"


def wu2020(n_genes: int):
    import mudata as md
    import scanpy as sc

    path = importlib.resources.files("scirpy") / "tests" / "data" / "wu2020_200.h5mu"
    adata = md.read_h5mu(path)["gex"].copy()
    sc.pp.filter_genes(adata, min_cells=3)
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=n_genes)
    adata = adata[:, adata.var["highly_variable"]].copy()
    return adata, "cluster_orig"


def timed(seconds: dict, name: str, call, *args, **kwargs):
    started = time.perf_counter()
    out = call(*args, **kwargs)
    seconds[name] = round(time.perf_counter() - started, 2)
    return out


def embed_everything(adata, seconds: dict, n_components: int, sentence_genes: int) -> tuple[list, list]:
    import scanpy as sc

    import geneverse as gv

    timed(seconds, "mi", gv.tl.coexpression, adata, layer="counts", progress=False, use_cache=False)
    timed(seconds, "genevector model", gv.tl.embed, adata, n_components=n_components, progress=False)
    timed(seconds, "cooccurrence", gv.tl.coexpression, adata, "cooccurrence", layer="counts", progress=False)
    timed(
        seconds,
        "glove",
        gv.tl.embed,
        adata,
        "gv_cooccurrence",
        method="glove",
        n_components=n_components,
        key_added="X_glove",
        progress=False,
    )
    timed(seconds, "text_embed", gv.tl.text_embed, adata, progress=False)
    sc.pp.pca(adata, n_comps=50, random_state=0)
    adata.varm["X_pca_loadings"] = adata.varm["PCs"]
    rng = np.random.default_rng(0)
    adata.varm["X_random"] = rng.standard_normal((adata.n_vars, n_components))
    gene_keys = ["X_gv", "X_glove", "X_genept", "X_pca_loadings"]

    timed(seconds, "cells gv", gv.tl.cell_embed, adata, "X_gv", layer="counts", key_added="cells_gv", progress=False)
    gv.tl.cell_embed(adata, "X_glove", layer="counts", key_added="cells_glove", progress=False)
    # GenePT-w: text vectors weighted by (log-)normalised expression, as GenePT does
    timed(
        seconds,
        "cells genept-w",
        gv.tl.cell_embed,
        adata,
        "X_genept",
        weighting="raw",
        key_added="cells_genept_w",
        progress=False,
    )
    timed(
        seconds,
        "cells genept-s",
        gv.tl.cell_embed,
        adata,
        method="sentence",
        n_top_genes=sentence_genes,
        layer="counts",
        key_added="cells_genept_s",
        progress=False,
    )
    adata.obsm["cells_random"] = rng.standard_normal((adata.n_obs, n_components))
    cell_keys = ["cells_gv", "cells_glove", "cells_genept_w", "cells_genept_s", "X_pca", "cells_random"]
    return gene_keys, cell_keys


GENE_NAMES = {
    "X_gv": "MI + GeneVector model (X_gv)",
    "X_glove": "co-occurrence + GloVe",
    "X_genept": "GenePT text (all-MiniLM-L6-v2)",
    "X_pca_loadings": "PCA-50 loadings",
    "random": "random vectors",
}
CELL_NAMES = {
    "cells_gv": "X_gv",
    "cells_glove": "X_glove",
    "cells_genept_w": "X_genept",
    "cells_genept_s": None,
    "X_pca": "X_pca_loadings",
    "cells_random": "random",
}
CELL_LABELS = {
    "cells_gv": "cell_embed(X_gv), TF-IDF",
    "cells_glove": "cell_embed(X_glove), TF-IDF",
    "cells_genept_w": "GenePT-w (text vectors x expression)",
    "cells_genept_s": "GenePT-s (cell sentences)",
    "X_pca": "PCA-50",
    "cells_random": "random vectors",
}


def evaluate(name: str, adata, label_key: str, args) -> dict:
    import geneverse as gv

    seconds: dict = {}
    gene_keys, cell_keys = embed_everything(adata, seconds, args.dims, args.sentence_genes)
    sets = gv.datasets.hpo_gene_sets(min_size=10, max_size=2000)
    genes = timed(seconds, "gene_set_auroc", gv.bench.gene_set_auroc, adata, sets, gene_keys, max_sets=args.max_sets)
    summary = genes.groupby("embedding")["auroc"].agg(["mean", "std", "count"])
    cells = timed(seconds, "cell_scores", gv.bench.cell_scores, adata, label_key, cell_keys)
    rows = []
    for cell_key in cell_keys:
        gene_key = CELL_NAMES[cell_key]
        row = {
            "dataset": name,
            "representation": CELL_LABELS[cell_key],
            "gene_embedding": GENE_NAMES.get(gene_key, "-"),
            "gene_set_auroc": float(summary.loc[gene_key, "mean"]) if gene_key in summary.index else None,
            "gene_set_auroc_sd": float(summary.loc[gene_key, "std"]) if gene_key in summary.index else None,
            "n_gene_sets": int(summary["count"].iloc[0]),
            **{k: float(v) for k, v in cells.loc[cell_key].items()},
        }
        rows.append(row)
    print(f"\n{name}: {adata.n_obs} cells x {adata.n_vars} genes, labels obs[{label_key!r}]; seconds: {seconds}")
    return {"rows": rows, "seconds": seconds, "genes": genes.to_dict(orient="records")}


def markdown(rows: list[dict]) -> str:
    lines = [
        "| data | cell representation | gene vectors | gene-set AUROC | k-means ARI / AMI | Leiden ARI / AMI | 10-NN acc |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        auroc = "-" if r["gene_set_auroc"] is None else f"{r['gene_set_auroc']:.3f} +- {r['gene_set_auroc_sd']:.3f}"
        lines.append(
            f"| {r['dataset']} | {r['representation']} | {r['gene_embedding']} | {auroc} | "
            f"{r['kmeans_ari']:.3f} / {r['kmeans_ami']:.3f} | {r['leiden_ari']:.3f} / {r['leiden_ami']:.3f} | "
            f"{r['knn_accuracy']:.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=100, help="gene vector dimensions (default 100)")
    parser.add_argument("--sentence-genes", type=int, default=64, help="GenePT-s genes per cell (default 64)")
    parser.add_argument("--max-sets", type=int, default=40, help="HPO gene sets per dataset (default 40)")
    parser.add_argument("--wu-genes", type=int, default=1000, help="highly variable genes of wu2020 (default 1000)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for embeddings.json")
    args = parser.parse_args()
    results = {}
    for name, (adata, label_key) in {"pbmc68k": pbmc68k(), "wu2020 (scirpy)": wu2020(args.wu_genes)}.items():
        results[name] = evaluate(name, adata, label_key, args)
    rows = [row for result in results.values() for row in result["rows"]]
    print()
    print(markdown(rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "embeddings.json").write_text(json.dumps(results, indent=1, default=str))
    pd.DataFrame(rows).to_csv(out / "embeddings.tsv", sep="\t", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
