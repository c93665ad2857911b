"""BEDspace benchmark on synthetic region sets with known labels: training time and retrieval quality.

Run with ``make bench-regions`` or ``python benchmarks/regions.py``. Two sizes of
``gv.datasets.region_sets`` (hg38 chromosome sizes from bioframe), a quarter of the sets held out.
Reported: seconds per epoch; r2l on held-out sets (top-1 accuracy, MRR of the true label); l2r over
the training sets (R-precision: the share of the top-R sets carrying the label, R = sets with that
label); and, as a baseline without training, the nearest label centroid of the raw token vectors
(cosine). geniml's BEDspace needs the archived StarSpace binary and its 0.8.4 search has no entry
point, so it is not run here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

SIZES = (
    {"n_labels": 4, "sets_per_label": 40, "universe_size": 5000, "regions_per_set": 200},
    {"n_labels": 10, "sets_per_label": 100, "universe_size": 50_000, "regions_per_set": 500},
)


def evaluate(size: dict, signal: float, epochs: int) -> dict:
    import geneverse as gv

    universe, sets, metadata = gv.datasets.region_sets(signal=signal, seed=0, **size)
    names = np.array(list(sets))
    held = set(np.random.default_rng(1).choice(names, len(names) // 4, replace=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = gv.regions.tokenize({k: v for k, v in sets.items() if k not in held}, universe, metadata=metadata)
        queries = gv.regions.tokenize({k: sets[k] for k in sorted(held)}, universe, metadata=metadata)
    started = time.perf_counter()
    gv.regions.train(model, ["cell_type"], epochs=epochs, progress=False)
    seconds = time.perf_counter() - started
    labels = [str(x) for x in model.uns["gv"]["X_bedspace"]["labels"]]
    truth = [f"cell_type:{metadata.loc[n, 'cell_type']}" for n in queries.obs_names]
    # r2l for held-out sets: their vector is the mean of the trained vectors of their regions
    region_vectors = model.varm["X_bedspace"]
    tokens = queries.X.tocsr()
    counts = np.maximum(np.asarray(tokens.sum(axis=1)).ravel(), 1)
    query_vectors = np.asarray(tokens @ region_vectors) / counts[:, None]
    label_vectors = np.asarray(model.uns["gv"]["X_bedspace"]["label_vectors"])
    scores = _cosine(query_vectors, label_vectors)
    ranks = np.array([1 + (row > row[labels.index(t)]).sum() for row, t in zip(scores, truth, strict=True)])
    # baseline: nearest label centroid of the raw token vectors
    train_tokens = model.X.tocsr()
    centroids = np.vstack(
        [np.asarray(train_tokens[(model.obs["cell_type"] == label.split(":")[1]).to_numpy()].mean(axis=0)).ravel()
         for label in labels]
    )  # fmt: skip
    baseline = _cosine(np.asarray(tokens.todense()), centroids)
    baseline_top1 = np.mean([labels[int(np.argmax(row))] == t for row, t in zip(baseline, truth, strict=True)])
    # l2r R-precision over the training sets
    r_precision = []
    for label in labels:
        ranked = gv.regions.search(model, label, "l2r", n=model.n_obs)
        relevant = (model.obs["cell_type"] == label.split(":")[1]).sum()
        top = ranked.set.head(relevant)
        r_precision.append(np.mean(model.obs.loc[top, "cell_type"].to_numpy() == label.split(":")[1]))
    return {
        **size,
        "signal": signal,
        "n_train_sets": model.n_obs,
        "n_held_out": queries.n_obs,
        "epochs": epochs,
        "seconds_per_epoch": seconds / epochs,
        "r2l_top1": float(np.mean(ranks == 1)),
        "r2l_mrr": float(np.mean(1.0 / ranks)),
        "l2r_r_precision": float(np.mean(r_precision)),
        "baseline_centroid_top1": float(baseline_top1),
    }


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=50, help="training epochs (default 50, StarSpace's)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for regions.json")
    args = parser.parse_args()
    rows = []
    for size in SIZES:
        for signal in (0.2, 0.5):
            row = evaluate(size, signal, args.epochs)
            rows.append(row)
            print(
                f"{row['n_labels']:>2d} labels, {row['n_train_sets']:>4d} train / {row['n_held_out']:>3d} held-out sets, "
                f"universe {row['universe_size']:>6,d}, signal {signal}: {row['seconds_per_epoch']:.3f} s/epoch | "
                f"r2l top-1 {row['r2l_top1']:.3f}, MRR {row['r2l_mrr']:.3f} (token-centroid baseline top-1 "
                f"{row['baseline_centroid_top1']:.3f}) | l2r R-precision {row['l2r_r_precision']:.3f}",
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "regions.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
