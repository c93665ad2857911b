"""Batch correction of cell vectors: geneverse against genevector 1.0.0 and Harmony, in one run.

Not a unit test: run ``make bench-batch``. Every method corrects the same input, the default cell
vectors (``coexpression`` -> ``embed`` -> ``cell_embed``, 50 dims) of planted multi-batch data
(``gv.datasets.synthetic``: 3,000 cells x 500 genes, 6 types; each batch scales every gene by its
own capture factor and all counts by a depth factor; some types occur in one batch only):

- ``none``: the uncorrected vectors;
- ``genevector``: genevector 1.0.0's ``CellEmbedding.batch_correct`` (its own code, given these
  vectors; batch0 as its required reference), which moves each batch by the difference of means;
- ``geneverse``: ``gv.tl.batch_correct`` with its defaults;
- ``geneverse, within-batch co-expression``: the pipeline with ``coexpression(batch_key="batch")``
  (the target within each batch, averaged), then ``batch_correct`` (its seconds include the
  pipeline); ``none, within-batch co-expression`` is its uncorrected cell vectors;
- ``geneverse capture, within-batch co-expression``: the same cells through
  ``batch_correct(capture=True)`` (per-batch gene capture factors removed from the counts, cells
  embedded again);
- ``harmony``: ``harmonypy.run_harmony`` (PyPI) on the same vectors, its ridge ``lamb`` swept
  (None = its adaptive default, 0.1 ... 10); ``harmony_matched`` is the setting with the most mixing
  among those whose 15-NN accuracy is at least geneverse's (equal conservation).

Metrics, over the cell types present in two or more batches for mixing: cross-batch neighbours
relative to perfect mixing (``gv.bench.batch_mixing``, 15 neighbours; bar >= 0.80), iLISI
(harmonypy's ``compute_lisi``, perplexity 30, rescaled so 0 = one batch, 1 = all batches), and for
conservation: cell-type 15-NN accuracy (bar >= 95% of the uncorrected), k-means ARI (as many
clusters as types, 5 seeds) and the cosine silhouette of the types (ASW). Then seconds on 200,000
cells x 50 dims in 4 batches for geneverse and Harmony.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

SETTINGS = {
    "base": {"n_batches": 3, "batch_effect": 0.5, "batch_depth": 0.5, "batch_specific_types": 1},
    "no_specific_types": {"n_batches": 3, "batch_effect": 0.5, "batch_depth": 0.5, "batch_specific_types": 0},
    "strong_capture": {"n_batches": 3, "batch_effect": 1.0, "batch_depth": 0.5, "batch_specific_types": 1},
    "five_batches": {"n_batches": 5, "batch_effect": 0.7, "batch_depth": 0.3, "batch_specific_types": 2},
}
HARMONY_LAMBDAS = (None, 0.1, 0.3, 1.0, 3.0, 10.0)


def genevector_correct(vectors: np.ndarray, obs: pd.DataFrame, batch_key: str, reference: str) -> np.ndarray | None:
    """Run genevector 1.0.0's CellEmbedding.batch_correct on these vectors (None if not installed)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from genevector.embedding import CellEmbedding
    except Exception:  # noqa: BLE001 - the peer is optional
        return None
    peer = CellEmbedding.__new__(CellEmbedding)
    peer.context = SimpleNamespace(cells=list(obs.index), metadata={batch_key: list(obs[batch_key].astype(str))})
    peer.data = dict.fromkeys(obs.index)
    peer.matrix = list(vectors)
    peer.batch_correct(batch_key, reference)
    return np.asarray(peer.matrix)


def harmony(vectors: np.ndarray, obs: pd.DataFrame, batch_key: str, lamb: float | None) -> np.ndarray:
    import harmonypy

    result = harmonypy.run_harmony(vectors, obs, [batch_key], lamb=lamb, verbose=False, random_state=0)
    corrected = np.asarray(result.Z_corr)
    return corrected.T if corrected.shape[0] != vectors.shape[0] else corrected


def scores(vectors: np.ndarray, batches: np.ndarray, types: np.ndarray) -> dict:
    import harmonypy
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    from geneverse.bench import batch_mixing, knn_accuracy

    shared = pd.crosstab(types, batches).gt(0).sum(axis=1).ge(2)
    keep = shared.loc[types].to_numpy()
    n_batches = len(np.unique(batches[keep]))
    lisi = harmonypy.compute_lisi(vectors[keep], pd.DataFrame({"batch": batches[keep]}), ["batch"])
    aris = [
        adjusted_rand_score(types, KMeans(len(np.unique(types)), n_init=10, random_state=s).fit_predict(vectors))
        for s in range(5)
    ]
    return {
        "mixing": batch_mixing(vectors, batches, types, k=15),
        "ilisi": float((np.median(lisi) - 1.0) / (n_batches - 1.0)),
        "knn15": knn_accuracy(vectors, types, k=15),
        "kmeans_ari": float(np.mean(aris)),
        "asw": float(silhouette_score(vectors, types, metric="cosine")),
    }


def planted(setting: str, params: dict, seed: int) -> list[dict]:
    import geneverse as gv

    data = gv.datasets.synthetic(3000, 500, 6, seed=seed, **params)
    gv.tl.coexpression(data, layer="counts", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    vectors = np.asarray(data.obsm["X_gv_cells"], dtype=np.float64)
    batches = data.obs["batch"].astype(str).to_numpy()
    types = data.obs["cell_type"].astype(str).to_numpy()
    rows = []

    def add(method: str, corrected: np.ndarray | None, seconds: float, **extra) -> None:
        if corrected is None:
            print(f"  {method}: not run (genevector not installed; `make peer`)", flush=True)
            return
        row = {"setting": setting, "seed": seed, "method": method, "seconds": seconds, **extra}
        row.update(scores(corrected, batches, types))
        rows.append(row)

    add("none", vectors, 0.0)
    started = time.perf_counter()
    peer = genevector_correct(vectors, data.obs, "batch", "batch0")
    add("genevector", peer, time.perf_counter() - started)
    started = time.perf_counter()
    gv.tl.batch_correct(data, "batch", progress=False)
    add("geneverse", np.asarray(data.obsm["X_gv_corrected"], dtype=np.float64), time.perf_counter() - started)
    # batch-aware co-expression: the target within each batch, averaged; then the same correction
    aware = data.copy()
    started = time.perf_counter()
    gv.tl.coexpression(aware, layer="counts", batch_key="batch", progress=False, use_cache=False)
    gv.tl.embed(aware, progress=False)
    gv.tl.cell_embed(aware, layer="counts", progress=False)
    add("none, within-batch co-expression", np.asarray(aware.obsm["X_gv_cells"], dtype=np.float64), 0.0)
    gv.tl.batch_correct(aware, "batch", progress=False)
    corrected = np.asarray(aware.obsm["X_gv_corrected"], dtype=np.float64)
    add("geneverse, within-batch co-expression", corrected, time.perf_counter() - started)
    # capture factors removed from the counts, the cells embedded again (batch_correct(capture=True))
    started = time.perf_counter()
    gv.tl.batch_correct(aware, "batch", capture=True, key_added="X_gv_capture", progress=False)
    corrected = np.asarray(aware.obsm["X_gv_capture"], dtype=np.float64)
    add("geneverse capture, within-batch co-expression", corrected, time.perf_counter() - started)
    for lamb in HARMONY_LAMBDAS:
        started = time.perf_counter()
        corrected = harmony(vectors, data.obs, "batch", lamb)
        add("harmony", corrected, time.perf_counter() - started, lamb="adaptive" if lamb is None else lamb)
    ours = next(r for r in rows if r["method"] == "geneverse")
    matched = [r for r in rows if r["method"] == "harmony" and r["knn15"] >= ours["knn15"]]
    if matched:
        best = max(matched, key=lambda r: r["mixing"])
        rows.append({**best, "method": "harmony_matched", "lamb": "", "chosen_lamb": best["lamb"]})
    return rows


def speed(n_cells: int = 200_000, n_dims: int = 50, n_batches: int = 4) -> dict:
    """Seconds of geneverse's correction and Harmony's on clustered random vectors."""
    import anndata as ad

    import geneverse as gv

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, n_dims))
    types = rng.integers(0, 12, n_cells)
    batches = rng.integers(0, n_batches, n_cells)
    vectors = centres[types] + 0.3 * rng.normal(size=(n_cells, n_dims)) + rng.normal(size=(n_batches, n_dims))[batches]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cells = ad.AnnData(
        X=np.zeros((n_cells, 1), dtype=np.float32),
        obs=pd.DataFrame({"batch": pd.Categorical([f"b{b}" for b in batches])}, index=[str(i) for i in range(n_cells)]),
        obsm={"X_gv_cells": vectors.astype(np.float32)},
    )
    started = time.perf_counter()
    gv.tl.batch_correct(cells, "batch", progress=False)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    harmony(vectors, cells.obs, "batch", None)
    theirs = time.perf_counter() - started
    return {
        "n_cells": n_cells,
        "n_dims": n_dims,
        "n_batches": n_batches,
        "geneverse_seconds": ours,
        "geneverse_rounds": int(cells.uns["gv"]["X_gv_corrected"]["rounds"]),
        "harmony_seconds": theirs,
    }


def capture_speed(n_cells: int = 100_000, n_genes: int = 500, n_batches: int = 4) -> dict:
    """Seconds of ``batch_correct`` with and without ``capture=True`` on planted counts (within-batch co-expression)."""
    import geneverse as gv

    data = gv.datasets.synthetic(n_cells, n_genes, 6, seed=0, n_batches=n_batches, batch_effect=0.7)
    gv.tl.coexpression(data, layer="counts", batch_key="batch", progress=False, use_cache=False)
    gv.tl.embed(data, progress=False)
    gv.tl.cell_embed(data, layer="counts", progress=False)
    started = time.perf_counter()
    gv.tl.batch_correct(data, "batch", progress=False)
    soft = time.perf_counter() - started
    started = time.perf_counter()
    gv.tl.batch_correct(data, "batch", capture=True, key_added="X_gv_capture", progress=False)
    capture = time.perf_counter() - started
    result = {"n_cells": n_cells, "n_genes": n_genes, "n_batches": n_batches, "soft_seconds": soft}
    result["capture_seconds"] = capture
    print(
        f"batch_correct on {n_cells:,} cells x {n_genes} genes: {soft:.1f} s; capture=True {capture:.1f} s", flush=True
    )
    return result


def summary(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    table["lamb"] = table.get("lamb", pd.Series(index=table.index, dtype=object)).fillna("")
    table.loc[~table["method"].str.startswith("harmony"), "lamb"] = ""
    uncorrected = table[table["method"] == "none"].set_index(["setting", "seed"])["knn15"]
    table["knn15_ratio"] = table["knn15"] / [
        uncorrected[(s, d)] for s, d in zip(table["setting"], table["seed"], strict=True)
    ]
    table["lamb"] = table["lamb"].astype(str)
    metrics = ["mixing", "ilisi", "knn15", "knn15_ratio", "kmeans_ari", "asw", "seconds"]
    return table.groupby(["setting", "method", "lamb"], sort=False)[metrics].mean().round(3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results", help="folder for batch.json and batch.md")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed, the base setting, no speed part")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    from geneverse._files import write_text

    settings = {"base": SETTINGS["base"]} if args.quick else SETTINGS
    seeds = 1 if args.quick else args.seeds
    rows = []
    for setting, params in settings.items():
        for seed in range(seeds):
            print(f"{setting} seed {seed}", flush=True)
            rows.extend(planted(setting, params, seed))
    table = summary(rows)
    pd.set_option("display.width", 200)
    print(table.to_string())
    results = {"planted": rows}
    if not args.quick:
        results["speed"] = speed()
        print(results["speed"])
        results["capture_speed"] = capture_speed()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "batch.json", json.dumps(results, indent=1, default=str))
    write_text(out / "batch.md", table.to_markdown() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
