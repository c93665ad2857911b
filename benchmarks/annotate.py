"""Marker-based annotation: calibration on planted types, then pbmc68k against scanpy's score_genes.

Not a unit test: run ``make bench-annotate``. In one run:

1. Calibration (planted data only): ``gv.datasets.synthetic`` (3,000 cells x 1,000 genes, 8 types,
   30 program genes each), 3 seeds x marker sets of 2, 5, 10 and 20 program genes per type, and
   10 per type of which 2 belong to another program (wrong markers). For each, and for both scores
   (``expression``: TF-IDF expression with the markers' gene weights; ``vectors``: cosine of the cell
   vectors), the relative softmax temperature that maximises the likelihood of the planted types
   (``fit_relative_temperature``); the medians are geneverse's defaults
   (``EXPRESSION_RELATIVE_TEMPERATURE``, ``RELATIVE_TEMPERATURE``).
2. pbmc68k (700 cells; ``bulk_labels`` collapsed to CD4 T, CD8 T, NK, B, Monocyte, DC, HSPC) with the
   shipped literature markers (``gv.datasets.pbmc_markers``): ``gv.tl.annotate`` per cell (both
   methods) and per Leiden cluster of the cell vectors (neighbours and Leiden not timed), and with negative markers
   (CD8A, CD8B against CD4 T; CD4, IL7R against CD8 T), against ``sc.tl.score_genes`` per type +
   argmax, and against genevector 1.0.0's ``phenotype_probability`` after its own training (200
   epochs on its exact MI, ``genevector_mi``; ``--peer-epochs``; skipped if the peer is not
   installed); and two more marker sets (``OTHER_PBMC_MARKERS``). Accuracy and macro-F1 over the 7
   true types (unassigned counts as wrong), expected
   calibration error (ECE, 10 bins) and mean top probability, the commonest confusions, seconds.
3. Planted types held out from the calibration (seeds 10-12), the same marker sets: ``annotate``
   (both methods, default temperatures) against ``score_genes`` + argmax on log-normalised values;
   accuracy, macro-F1 and ECE.
4. wu2020 (scirpy's 200 T cells, 2,000 HVGs): ``cluster_orig`` collapsed to CD4 T, CD8 T and Treg
   (the mitochondrial-high cluster left out), literature markers (``WU2020_MARKERS``), ``annotate``
   (both methods) against ``score_genes`` + argmax. The peer is not run here: at 2,000 genes it trains at about
   5.4 s per epoch (benchmarks/embedding.py), some 18 minutes for 200 epochs.
5. Speed: ``annotate`` on 1,000,000 cells (200 genes, 10 million counts; 50-dim vectors), 10 types,
   both methods, per cell and per group.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

COLLAPSE = {
    "CD4+/CD25 T Reg": "CD4 T",
    "CD4+/CD45RO+ Memory": "CD4 T",
    "CD4+/CD45RA+/CD25- Naive T": "CD4 T",
    "CD8+ Cytotoxic T": "CD8 T",
    "CD8+/CD45RA+ Naive Cytotoxic": "CD8 T",
    "CD56+ NK": "NK",
    "CD19+ B": "B",
    "CD14+ Monocyte": "Monocyte",
    "Dendritic": "DC",
    "CD34+": "HSPC",
}


def calibrate() -> list[dict]:
    import pandas as pd

    import geneverse as gv
    from geneverse._core._annotate import (
        EXPRESSION_RELATIVE_TEMPERATURE,
        cosine_scores,
        expression_scores,
        fit_relative_temperature,
        gene_profiles,
        marker_directions,
        probabilities,
        temperature,
    )
    from geneverse._core._chunks import CellChunks
    from geneverse._core._selftrain import expression_components, self_train, training_features

    rows = []
    for seed in range(3):
        data = gv.datasets.synthetic(3000, 1000, 8, seed=seed, genes_per_program=30)
        gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
        gv.tl.embed(data, progress=False)
        gv.tl.cell_embed(data, layer="counts", progress=False)
        components = expression_components(CellChunks(data.layers["counts"]))
        programs = data.var["program"].astype(str).to_numpy()
        truth = pd.Categorical(
            data.obs["cell_type"].astype(str).str.replace("type", "P"), categories=[f"P{i}" for i in range(8)]
        )
        rng = np.random.default_rng(seed)
        for size, wrong in [(2, 0), (5, 0), (10, 0), (20, 0), (10, 2)]:
            up = []
            for p in range(8):
                own = rng.choice(np.flatnonzero(programs == f"P{p}"), size - wrong, replace=False)
                other = rng.choice(np.flatnonzero(programs == f"P{(p + 1) % 8}"), wrong, replace=False)
                up.append(np.concatenate([own, other]))
            directions = marker_directions(data.varm["X_gv"], up)
            labels = truth.codes
            chunks = CellChunks(data.layers["counts"])
            expression = expression_scores(chunks, gene_profiles(data.varm["X_gv"], directions))
            seeded = probabilities(expression, temperature(expression, EXPRESSION_RELATIVE_TEMPERATURE))
            logits, _ = self_train(seeded, training_features(components, expression), np.ones(len(seeded), bool))
            for method, scores in (
                ("vectors", cosine_scores(data.obsm["X_gv_cells"], directions)),
                ("expression", expression),
                ("refined", logits),
            ):
                relative = fit_relative_temperature(scores, labels)
                accuracy = float((scores.argmax(axis=1) == labels).mean())
                rows.append(
                    {
                        "seed": seed,
                        "method": method,
                        "markers": size,
                        "wrong": wrong,
                        "relative_temperature": relative,
                        "accuracy": accuracy,
                    }
                )
                print(
                    f"calibration seed {seed}, {method}, {size} markers ({wrong} wrong): T/sd {relative:.3f}, "
                    f"accuracy {accuracy:.3f}",
                    flush=True,
                )
    for method in ("expression", "vectors", "refined"):
        fitted = [r["relative_temperature"] for r in rows if r["method"] == method]
        print(f"{method}: median relative temperature {np.median(fitted):.3f}", flush=True)
    return rows


#: geneverse's variants in every table: (name, method, refine); the default, refined, first.
VARIANTS = (("expression", "expression", True), ("not refined", "expression", False), ("vectors", "vectors", False))


def planted() -> list[dict]:
    import scanpy as sc
    from sklearn.metrics import accuracy_score, f1_score

    import geneverse as gv
    from geneverse._core._annotate import expected_calibration_error

    rows = []
    for seed in (10, 11, 12):
        data = gv.datasets.synthetic(3000, 1000, 8, seed=seed, genes_per_program=30)
        gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
        gv.tl.embed(data, progress=False)
        gv.tl.cell_embed(data, layer="counts", progress=False)
        sc.pp.normalize_total(data)
        sc.pp.log1p(data)
        programs = data.var["program"].astype(str).to_numpy()
        truth = data.obs["cell_type"].astype(str).to_numpy()
        types = [f"type{p}" for p in range(8)]
        rng = np.random.default_rng(seed)
        for size, wrong in [(2, 0), (5, 0), (10, 0), (20, 0), (10, 2)]:
            markers = {}
            for p in range(8):
                own = rng.choice(data.var_names[programs == f"P{p}"], size - wrong, replace=False)
                other = rng.choice(data.var_names[programs == f"P{(p + 1) % 8}"], wrong, replace=False)
                markers[f"type{p}"] = [*own, *other]
            found, probs = {}, {}
            for name, method, refine in (
                ("expression", "expression", True),
                ("unrefined", "expression", False),
                ("vectors", "vectors", False),
            ):
                gv.tl.annotate(data, markers, method=method, refine=refine, progress=False)
                probs[name] = data.obsm["gv_cell_type_probabilities"][types].to_numpy()
                found[name] = data.obs["gv_cell_type"].astype(str).to_numpy()
            scored = data.copy()
            for cell_type, genes in markers.items():
                sc.tl.score_genes(scored, genes, score_name=cell_type, random_state=0)
            baseline = np.array(types)[scored.obs[types].to_numpy().argmax(axis=1)]
            row = {"seed": seed, "markers": size, "wrong": wrong}
            codes = np.array([types.index(t) for t in truth])
            named = (
                ("geneverse", found["expression"]),
                ("unrefined", found["unrefined"]),
                ("vectors", found["vectors"]),
                ("score_genes", baseline),
            )
            for name, predicted in named:
                row[f"{name}_accuracy"] = float(accuracy_score(truth, predicted))
                row[f"{name}_macro_f1"] = float(f1_score(truth, predicted, labels=types, average="macro"))
            row["geneverse_ece"] = expected_calibration_error(probs["expression"], codes)
            row["vectors_ece"] = expected_calibration_error(probs["vectors"], codes)
            row["unrefined_ece"] = expected_calibration_error(probs["unrefined"], codes)
            rows.append(row)
            print(
                f"planted seed {seed}, {size} markers ({wrong} wrong): geneverse accuracy {row['geneverse_accuracy']:.3f} "
                f"F1 {row['geneverse_macro_f1']:.3f} ECE {row['geneverse_ece']:.3f} | not refined accuracy "
                f"{row['unrefined_accuracy']:.3f} F1 {row['unrefined_macro_f1']:.3f} | vectors accuracy "
                f"{row['vectors_accuracy']:.3f} F1 {row['vectors_macro_f1']:.3f} ECE {row['vectors_ece']:.3f} | "
                f"score_genes accuracy {row['score_genes_accuracy']:.3f} F1 {row['score_genes_macro_f1']:.3f}",
                flush=True,
            )
    return rows


def genevector_phenotypes(adata, markers: dict, epochs: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Run genevector 1.0.0's ``phenotype_probability`` after its own training on its exact MI (``genevector_mi``).

    Returns the assigned types and probabilities in ``adata``'s cell order, and the seconds of training
    (model and cell embedding) plus assignment.
    """
    import geneverse as gv
    from quality import genevector_cell_embedding

    gv.tl.coexpression(adata, "genevector_mi", layer="counts", progress=False, use_cache=False)
    mi = gv.get.coexpression(adata, "gv_genevector_mi")
    peer, cells, trained, embedded = genevector_cell_embedding(adata, mi, epochs)
    started = time.perf_counter()
    upper = {t: [g.upper() for g in genes] for t, genes in markers.items()}
    peer.phenotype_probability(cells, upper)
    seconds = trained + embedded + time.perf_counter() - started
    order = cells.obs_names.get_indexer(adata.obs_names)
    if (order < 0).any():
        raise RuntimeError("genevector dropped cells from its cell embedding")
    probs = cells.obs[[f"{t} Pseudo-probability" for t in markers]].to_numpy(dtype=float)[order]
    return cells.obs["genevector"].astype(str).to_numpy()[order], probs, seconds


def scorer(dataset: str, truth: np.ndarray, types: list[str], rows: list[dict]):
    """A function that scores one method's assignment against ``truth`` and appends a row to ``rows``."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score

    from geneverse._core._annotate import expected_calibration_error

    def score(name: str, predicted, seconds: float, probs=None) -> None:
        predicted = np.asarray(predicted, dtype=str)
        row = {
            "dataset": dataset,
            "method": name,
            "accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(f1_score(truth, predicted, labels=types, average="macro", zero_division=0)),
            "seconds": seconds,
        }
        if probs is not None:  # over the cells with finite probabilities (genevector's can overflow to NaN)
            finite = np.isfinite(probs).all(axis=1)
            row["nonfinite_cells"] = int((~finite).sum())
            codes = np.array([types.index(t) for t in truth])
            row["ece"] = expected_calibration_error(probs[finite], codes[finite])
            row["mean_top_probability"] = float(probs[finite].max(axis=1).mean())
        wrong = pd.Series(list(zip(truth, predicted, strict=True)))[truth != predicted].value_counts()
        row["confusions"] = {f"{t} as {p}": int(n) for (t, p), n in wrong.head(4).items()}
        rows.append(row)
        ece = f", ECE {row['ece']:.3f}, mean top p {row['mean_top_probability']:.3f}" if "ece" in row else ""
        print(
            f"{dataset} {name:40s} accuracy {row['accuracy']:.3f}, macro-F1 {row['macro_f1']:.3f}{ece}, "
            f"{seconds:.1f} s",
            flush=True,
        )

    return score


def score_genes_argmax(adata, markers: dict) -> tuple[np.ndarray, float]:
    """Scanpy's ``score_genes`` per type, then the type with the highest score; and the seconds."""
    import scanpy as sc

    started = time.perf_counter()
    scored = adata.copy()
    for cell_type, genes in markers.items():
        sc.tl.score_genes(scored, genes, score_name=cell_type, random_state=0)
    types = list(markers)
    return np.array(types)[scored.obs[types].to_numpy().argmax(axis=1)], time.perf_counter() - started


#: wu2020's clusters (cluster_orig) collapsed to three T-cell types; "3.1-MT" (mitochondrial-high) is left out.
WU2020_MARKERS = {  # literature markers: Zheng et al. 2017 (Cell 169:1342), Szabo et al. 2019 (Nat Commun 10:4706)
    "CD4 T": ["CD4", "CD40LG", "IL7R", "TCF7", "CCR7", "LTB"],
    "CD8 T": ["CD8A", "CD8B", "GZMK", "NKG7", "CCL5", "GZMA"],
    "Treg": ["FOXP3", "IL2RA", "CTLA4", "TNFRSF4", "TNFRSF18", "BATF"],
}


def wu2020_types() -> list[dict]:
    """Annotate scirpy's 200 wu2020 T cells (2,000 HVGs): CD4 T, CD8 T and Treg from markers; score_genes against annotate."""
    import geneverse as gv
    from quality import wu2020

    adata, label_key = wu2020()
    clusters = adata.obs[label_key].astype(str)
    truth = np.where(clusters.str.startswith("4.6"), "Treg", np.where(clusters.str.startswith("4."), "CD4 T", "CD8 T"))
    keep = ~clusters.str.startswith("3.").to_numpy()
    adata, truth = adata[keep].copy(), truth[keep]
    present = {t: [g for g in genes if g in adata.var_names] for t, genes in WU2020_MARKERS.items()}
    print(f"wu2020: {adata.n_obs} cells; markers among the 2,000 HVGs: {present}", flush=True)
    types = list(WU2020_MARKERS)
    rows: list[dict] = []
    score = scorer("wu2020", truth, types, rows)
    score("scanpy score_genes + argmax", *score_genes_argmax(adata, present))
    started = time.perf_counter()
    gv.tl.coexpression(adata, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(adata, progress=False)
    gv.tl.cell_embed(adata, layer="counts", progress=False)
    trained = time.perf_counter() - started
    for name, method, refine in VARIANTS:
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # markers outside the HVGs: listed above
            gv.tl.annotate(adata, WU2020_MARKERS, method=method, refine=refine, progress=False)
        probs = adata.obsm["gv_cell_type_probabilities"][types].to_numpy()
        seconds = trained + time.perf_counter() - started
        score(f"geneverse annotate, per cell ({name})", adata.obs["gv_cell_type"], seconds, probs)
    return rows


def pbmc68k(peer_epochs: int | None) -> list[dict]:
    import scanpy as sc

    import geneverse as gv

    adata = gv.datasets.pbmc68k()
    truth = adata.obs["bulk_labels"].map(COLLAPSE).astype(str).to_numpy()
    markers = gv.datasets.pbmc_markers()
    types = list(markers)
    rows: list[dict] = []
    score = scorer("pbmc68k", truth, types, rows)
    if peer_epochs:
        try:
            labels, probs, seconds = genevector_phenotypes(adata.copy(), markers, peer_epochs)
            score(f"genevector phenotype_probability ({peer_epochs} epochs)", labels, seconds, probs)
        except ImportError as error:
            print(f"genevector not run: {error} (`make peer`)", flush=True)

    score("scanpy score_genes + argmax", *score_genes_argmax(adata, markers))

    started = time.perf_counter()
    gv.tl.coexpression(adata, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(adata, progress=False)
    gv.tl.cell_embed(adata, layer="counts", progress=False)
    trained = time.perf_counter() - started
    for name, method, refine in VARIANTS:
        started = time.perf_counter()
        gv.tl.annotate(adata, markers, method=method, refine=refine, progress=False)
        seconds = time.perf_counter() - started
        probs = adata.obsm["gv_cell_type_probabilities"][types].to_numpy()
        score(f"geneverse annotate, per cell ({name})", adata.obs["gv_cell_type"], trained + seconds, probs)
    sc.pp.neighbors(adata, use_rep="X_gv_cells", random_state=0)
    sc.tl.leiden(adata, resolution=2.0, flavor="igraph", n_iterations=2, random_state=0)
    started = time.perf_counter()
    gv.tl.annotate(adata, markers, groupby="leiden", progress=False)
    probs = adata.obsm["gv_cell_type_probabilities"][types].to_numpy()
    score(
        "geneverse annotate, per Leiden cluster",
        adata.obs["gv_cell_type"],
        trained + time.perf_counter() - started,
        probs,
    )
    negative = {t: {"up": genes} for t, genes in markers.items()}
    negative["CD4 T"]["down"] = ["CD8A", "CD8B"]
    negative["CD8 T"]["down"] = ["CD4", "IL7R"]
    started = time.perf_counter()
    gv.tl.annotate(adata, negative, progress=False)
    probs = adata.obsm["gv_cell_type_probabilities"][types].to_numpy()
    seconds = trained + time.perf_counter() - started
    score("geneverse annotate, negative markers", adata.obs["gv_cell_type"], seconds, probs)
    for row in rows:
        print(f"  {row['method']}: most common errors {row['confusions']}", flush=True)
    return rows


#: Two more marker sets for pbmc68k's seven types, written without looking at its labels: markers of the
#: Seurat PBMC 3k tutorial and Azimuth's PBMC level-1 types that pbmc68k holds, and the first two of each.
OTHER_PBMC_MARKERS = {
    "Seurat / Azimuth": {
        "CD4 T": ["IL7R", "CCR7", "MAL", "LTB", "CD3E"],
        "CD8 T": ["CD8A", "CD8B", "GZMH", "CD3E"],
        "NK": ["GNLY", "NKG7", "KLRB1", "TYROBP", "PRF1"],
        "B": ["MS4A1", "CD79A", "HLA-DQB1"],
        "Monocyte": ["LYZ", "S100A9", "CST3", "FCN1"],
        "DC": ["FCER1A", "CST3", "CLEC10A"],
        "HSPC": ["PRSS57", "SPINK2"],
    },
    "two per type": {
        "CD4 T": ["IL7R", "CCR7"],
        "CD8 T": ["CD8A", "CD8B"],
        "NK": ["GNLY", "NKG7"],
        "B": ["MS4A1", "CD79A"],
        "Monocyte": ["LYZ", "S100A8"],
        "DC": ["FCER1A", "CLEC10A"],
        "HSPC": ["PRSS57", "SPINK2"],
    },
}


def pbmc68k_other_markers() -> list[dict]:
    """pbmc68k with :data:`OTHER_PBMC_MARKERS`: both geneverse methods per cell against score_genes + argmax."""
    import geneverse as gv

    adata = gv.datasets.pbmc68k()
    truth = adata.obs["bulk_labels"].map(COLLAPSE).astype(str).to_numpy()
    gv.tl.coexpression(adata, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(adata, progress=False)
    gv.tl.cell_embed(adata, layer="counts", progress=False)
    rows: list[dict] = []
    for name, markers in OTHER_PBMC_MARKERS.items():
        score = scorer(f"pbmc68k, {name} markers", truth, list(markers), rows)
        score("scanpy score_genes + argmax", *score_genes_argmax(adata, markers))
        for name, method, refine in VARIANTS:
            started = time.perf_counter()
            gv.tl.annotate(adata, markers, method=method, refine=refine, progress=False)
            probs = adata.obsm["gv_cell_type_probabilities"][list(markers)].to_numpy()
            score(f"geneverse annotate ({name})", adata.obs["gv_cell_type"], time.perf_counter() - started, probs)
    return rows


def speed() -> list[dict]:
    import anndata as ad
    import scipy.sparse as sp

    import geneverse as gv

    rng = np.random.default_rng(0)
    n_cells, n_genes = 1_000_000, 200
    counts = sp.random(n_cells, n_genes, density=0.05, format="csr", random_state=0, dtype=np.float32)
    counts.data = rng.integers(1, 10, size=counts.nnz).astype(np.float32)  # 10 million counts
    adata = ad.AnnData(X=counts)
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.varm["X_gv"] = rng.normal(size=(n_genes, 50)).astype(np.float32)
    adata.obsm["X_gv_cells"] = rng.normal(size=(n_cells, 50)).astype(np.float32)
    adata.obs["cluster"] = (np.arange(n_cells) % 50).astype(str)
    markers = {f"T{i}": [f"g{j}" for j in range(5 * i, 5 * i + 5)] for i in range(10)}
    rows = []
    for name, method, refine in VARIANTS:
        for groupby in (None, "cluster"):
            started = time.perf_counter()
            gv.tl.annotate(adata, markers, method=method, refine=refine, groupby=groupby, progress=False)
            seconds = time.perf_counter() - started
            rows.append({"cells": n_cells, "types": 10, "method": name, "groupby": groupby, "seconds": seconds})
            print(f"annotate 1,000,000 cells, 10 types, {name}, groupby={groupby}: {seconds:.1f} s", flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results", help="folder for annotate.json")
    parser.add_argument("--peer-epochs", type=int, default=200, help="genevector's epochs (0: not run; default 200)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", FutureWarning)
    from geneverse._files import write_text

    results = {
        "calibration": calibrate(),
        "planted": planted(),
        "pbmc68k": pbmc68k(args.peer_epochs),
        "pbmc68k_other_markers": pbmc68k_other_markers(),
        "wu2020": wu2020_types(),
        "speed": speed(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "annotate.json", json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
