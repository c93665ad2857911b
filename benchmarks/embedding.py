"""Same-run benchmark of gene embeddings and exact pair search.

Run with ``make bench-embedding`` or ``python benchmarks/embedding.py [--quick]``.

1. Training on the same signed-MI target (pbmc68k counts; synthetic 2,000 genes): geneverse's
   ``gv.tl.embed`` against genevector 1.0.0's ``GeneVector`` model (its defaults: 100 dims,
   ``c = 100``, Adadelta, U(-1, 1) initialisation, all pairs in one batch), both CPU. The peer
   needs seconds per epoch, so it runs for a fixed number of epochs and its seconds per epoch
   and loss are reported; geneverse runs to its stopping rule and for the same number of epochs.
   Both losses are the same quantity: mean over pairs i != j of (w_i . c_j - c^2 t_ij)^2.
   A 5,000-gene target (rank-30 structure plus noise) is timed to the stopping rule.
2. ``similar_pairs`` on 20,000 random genes x 100 dims: exact top-10, timed, with the peak
   resident memory of the process measured by ``/usr/bin/time -v``; a brute-force loop over all
   pair differences (one gene at a time) checks the answer and gives a baseline on 2,000 genes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from coexpression import peer_installed

PEER_EPOCHS = {"pbmc68k counts": 60, "synthetic NB 2000": 6}


# ---------------------------------------------------------------- workers


def train_geneverse(path: str, epochs: int | None) -> dict:
    import anndata as ad

    import geneverse as gv

    adata = ad.read_h5ad(path)
    started = time.perf_counter()
    gv.tl.embed(adata, "gv_mi", n_components=100, epochs=epochs, tol=None if epochs else "auto", progress=False)
    seconds = time.perf_counter() - started
    record = adata.uns["gv"]["X_gv"]
    return {"seconds": seconds, "epochs": int(record["epochs_run"]), "final_loss": float(record["final_loss"])}


def train_peer(path: str, epochs: int) -> dict:
    import anndata as ad
    import torch
    from genevector.data import GeneVectorDataset
    from genevector.model import GeneVector

    import geneverse as gv

    torch.manual_seed(0)
    np.random.seed(0)
    adata = ad.read_h5ad(path)
    target = gv.io.coexpression_frame(adata, "gv_mi")
    names = [g.upper() for g in target.index]
    values = target.to_numpy()
    scores = {a: {b: float(values[i, j]) for j, b in enumerate(names) if i != j} for i, a in enumerate(names)}
    counts = ad.AnnData(X=adata.layers["counts"], var=adata.var[[]].copy())
    with tempfile.TemporaryDirectory() as folder:
        dataset = GeneVectorDataset(counts, device="cpu", mi_scores=scores, use_cache=False)
        # With side-loaded scores the peer leaves num_pairs unset and its default batch size becomes the
        # float 1e6, which crashes; G(G-1)/2 is the batch it uses when it computes the scores itself
        # (two batches per epoch over its G(G-1) ordered pairs).
        batch = len(names) * (len(names) - 1) // 2
        model = GeneVector(
            dataset, output_file=str(Path(folder) / "genes.vec"), emb_dimension=100, c=100.0, batch_size=batch
        )
        started = time.perf_counter()
        model.train(epochs, threshold=1e-6, update_interval=10**9)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "epochs": epochs, "final_loss": float(model.loss_values[-1])}


def pairs_worker(n_genes: int, dims: int, check: bool) -> dict:
    import anndata as ad
    import scipy.sparse as sp

    import geneverse as gv

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n_genes, dims)).astype(np.float32)
    adata = ad.AnnData(X=sp.csr_matrix((1, n_genes)))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.varm["X_gv"] = vectors
    started = time.perf_counter()
    table = gv.tl.similar_pairs(adata, "g0", "g1", n=10)
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "top": list(zip(table.gene_x, table.gene_y, strict=True))}
    if check:
        started = time.perf_counter()
        result["brute_top"] = brute_force(vectors.astype(np.float64), 0, 1, 10)
        result["brute_seconds"] = time.perf_counter() - started
    return result


def large_target_worker(n_genes: int) -> dict:
    """Train on a 5,000-gene symmetric target (rank-30 structure plus noise) to the stopping rule."""
    import anndata as ad
    import scipy.sparse as sp

    import geneverse as gv

    rng = np.random.default_rng(0)
    factors = rng.normal(size=(n_genes, 30))
    noise = rng.normal(size=(n_genes, n_genes))
    target = np.tanh(factors @ factors.T / 30 + 0.15 * (noise + noise.T))
    adata = ad.AnnData(X=sp.csr_matrix((1, n_genes)))
    adata.var_names = [f"g{i}" for i in range(n_genes)]
    adata.varp["target"] = target.astype(np.float32)
    started = time.perf_counter()
    gv.tl.embed(adata, "target", n_components=100, progress=False)
    record = adata.uns["gv"]["X_gv"]
    return {"seconds": time.perf_counter() - started, "epochs": int(record["epochs_run"])}


def brute_force(vectors: np.ndarray, a: int, b: int, n: int) -> list[tuple[str, str]]:
    """Every ordered pair's difference, one first gene at a time (the reference answer)."""
    query = vectors[a] - vectors[b]
    query /= np.linalg.norm(query)
    best: list[tuple[float, int, int]] = []
    for x in range(len(vectors)):
        if x in (a, b):
            continue
        differences = vectors[x] - vectors
        with np.errstate(invalid="ignore", divide="ignore"):
            scores = differences @ query / np.linalg.norm(differences, axis=1)
        scores[[x, a, b]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:n]
        best = sorted(best + [(float(scores[y]), x, int(y)) for y in top], key=lambda t: (-t[0], t[1], t[2]))[:n]
    return [(f"g{x}", f"g{y}") for _, x, y in best]


def run(args: list[str], timed: bool = False) -> dict:
    command = [sys.executable, __file__, *args]
    if timed and shutil.which("time") and Path("/usr/bin/time").exists():
        command = ["/usr/bin/time", "-v", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for line in done.stderr.splitlines():
        if "Maximum resident set size" in line:
            result["max_rss_gb"] = int(line.split(":")[1]) / 1024**2
    return result


# ---------------------------------------------------------------- driver


def make_targets(folder: Path, quick: bool) -> list[tuple[str, Path]]:
    import geneverse as gv

    sets = [("pbmc68k counts", gv.datasets.pbmc68k())]
    if not quick:
        sets.append(("synthetic NB 2000", gv.datasets.synthetic(10_000, 2000, 10, seed=0, mean_counts=0.03)))
    paths = []
    for name, adata in sets:
        gv.tl.coexpression(adata, layer="counts", progress=False, use_cache=False)
        path = folder / f"{name.replace(' ', '_')}.h5ad"
        adata.write_h5ad(path)
        paths.append((name, path))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pbmc68k only, 5,000 genes for the pair search")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results", help="folder for embedding.json")
    args = parser.parse_args()
    if args.worker:
        task = json.loads(args.worker)
        if task["kind"] == "geneverse":
            print(json.dumps(train_geneverse(task["path"], task.get("epochs"))))
        elif task["kind"] == "peer":
            print(json.dumps(train_peer(task["path"], task["epochs"])))
        elif task["kind"] == "large":
            print(json.dumps(large_target_worker(task["genes"])))
        else:
            print(json.dumps(pairs_worker(task["genes"], task["dims"], task["check"])))
        return 0
    if not peer_installed("genevector.model"):
        return 1
    rows: dict = {"training": [], "pairs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in make_targets(Path(tmp), args.quick):
            epochs = PEER_EPOCHS[name]
            peer = run(["--worker", json.dumps({"kind": "peer", "path": str(path), "epochs": epochs})])
            ours = run(["--worker", json.dumps({"kind": "geneverse", "path": str(path)})])
            same = run(["--worker", json.dumps({"kind": "geneverse", "path": str(path), "epochs": epochs})])
            row = {"data": name, "peer": peer, "geneverse": ours, "geneverse_same_epochs": same}
            rows["training"].append(row)
            print(
                f"{name:18s} genevector {peer['epochs']} epochs: {peer['seconds']:.1f} s "
                f"({peer['seconds'] / peer['epochs']:.2f} s/epoch), loss {peer['final_loss']:.4g} | geneverse "
                f"{same['epochs']} epochs: {same['seconds']:.2f} s, loss {same['final_loss']:.4g}; to its stopping "
                f"rule: {ours['epochs']} epochs, {ours['seconds']:.2f} s, loss {ours['final_loss']:.4g}",
                flush=True,
            )
    large = run(["--worker", json.dumps({"kind": "large", "genes": 5000})])
    rows["large_target"] = large
    print(
        f"gv.tl.embed on a 5,000-gene target, 100 dims: {large['epochs']} epochs, {large['seconds']:.1f} s", flush=True
    )
    for genes, check in ((2000, True), (5000 if args.quick else 20_000, False)):
        result = run(
            ["--worker", json.dumps({"kind": "pairs", "genes": genes, "dims": 100, "check": check})], timed=True
        )
        result["genes"] = genes
        rows["pairs"].append(result)
        pairs = genes * (genes - 1)
        text = (
            f"similar_pairs {genes} genes x 100 dims: exact top-10 over {pairs:.2e} ordered pairs in "
            f"{result['seconds']:.2f} s, peak RSS {result.get('max_rss_gb', float('nan')):.2f} GB; a materialised "
            f"index of all pair differences would need {pairs * 100 * 4 / 1e9:.0f} GB (float32)"
        )
        if check:
            agree = [list(p) for p in result["top"]] == [list(p) for p in result["brute_top"]]
            text += f"; brute force {result['brute_seconds']:.1f} s, same top-10: {agree}"
        print(text, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "embedding.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
