"""Same-run benchmark of co-expression targets: geneverse against genevector 1.0.0 and the floor.

Run with ``make bench`` (which installs the peer and unsets the OpenBLAS variables that slow numpy
here), or ``python benchmarks/coexpression.py [--quick]``. Every measurement runs in a fresh
process, so peak memory (max RSS) belongs to that one computation; the data are written once to
h5ad files and read by every worker.

For each dataset and each target both packages offer (mi, pearson, spearman, jaccard, cosine):
wall seconds, peak RSS, the time ratio, and the largest absolute difference between the matrices.
MI values are compared against genevector's ``numpy`` backend on a gene subset (a Python loop over
pairs, too slow for all genes); MI time is compared against its ``numba`` backend, its fastest on
CPU, whose matrix is wrong (an off-by-one in its pair index, see below), so its values are not used
as a reference. The floor is the bare scipy sparse product ``O.T @ O`` of the cells x (genes * 10)
bin-indicator matrix, which the exact binned MI needs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGETS = ("mi", "pearson", "spearman", "jaccard", "cosine")
MI_VALUE_GENES = 60  # genes compared against the peer's (slow) numpy MI backend
NUMBA_DEFECT = (
    "genevector's numba MI backend inverts the upper-triangle index with n_genes - 1 instead of n_genes - 2, "
    "so slot (i, j) holds MI(i + 1, j): its matrix is not used as a reference (PEER.md)."
)


def _status_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024**2
    raise KeyError(field)


def peak_rss_gb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would include the parent's from before exec)."""
    try:
        return _status_gb("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def peer_installed(module: str) -> bool:
    """Whether genevector's ``module`` imports; says how to install the peer when it does not."""
    try:
        importlib.import_module(module)
    except ImportError:
        print(
            "genevector 1.0.0 is not installed: run `python benchmarks/install_genevector.py` first.", file=sys.stderr
        )
        return False
    return True


def start_measuring() -> float:
    """Reset the peak to the current RSS (Linux clear_refs 5) and return the current RSS in GB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_gb("VmRSS")
    except (OSError, KeyError):
        return peak_rss_gb()


# ---------------------------------------------------------------- workers (one per process)


def load_counts(path: str):
    import anndata as ad
    import scipy.sparse as sp

    adata = ad.read_h5ad(path)
    return sp.csr_matrix(adata.layers["counts"]), list(adata.var_names)


def peer_matrix(scores: dict, genes: list[str]) -> np.ndarray:
    index = {g.upper(): i for i, g in enumerate(genes)}
    matrix = np.zeros((len(genes), len(genes)), dtype=np.float32)
    for a, row in scores.items():
        for b, value in row.items():
            matrix[index[a.upper()], index[b.upper()]] = value
    return matrix


def worker(task: dict) -> dict:
    X, genes = load_counts(task["data"])
    if task.get("genes"):
        X, genes = X[:, : task["genes"]], genes[: task["genes"]]
    tool, target = task["tool"], task["target"]
    if tool == "geneverse":
        import anndata as ad

        import geneverse as gv

        adata = ad.AnnData(X=X)
        adata.var_names = genes
        # warm-up on a small slice: imports and first-call overheads are not what is measured
        ours = "genevector_mi" if target == "mi" else target  # the peer's estimator, pair for pair
        gv.tl.coexpression(adata[:500, :20].copy(), ours, use_cache=False, progress=False)
        baseline = start_measuring()
        started = time.perf_counter()
        gv.tl.coexpression(adata, ours, use_cache=False, progress=False, mi_backend=task.get("backend", "auto"))
        seconds = time.perf_counter() - started
        matrix = gv.get.coexpression(adata, f"gv_{ours}").to_numpy()
    elif tool == "genevector":
        from genevector import metrics

        kwargs = {"signed": True, "backend": task["backend"]} if target == "mi" else {}
        function = metrics.get_target_function(target)
        # warm-up (numba JIT compilation, ~3 s, is not measured) on well-detected genes: the peer's
        # spearman crashes when scipy returns a scalar for constant columns
        detected = np.argsort(-X[:500].getnnz(axis=0))[:20]
        function(X[:500][:, detected], [genes[i] for i in detected], **kwargs)
        baseline = start_measuring()
        started = time.perf_counter()
        scores = function(X, genes, **kwargs)
        seconds = time.perf_counter() - started
        matrix = peer_matrix(scores, genes)
        np.fill_diagonal(matrix, np.nan)  # the peer has no self pairs (or sets them to 0)
    elif tool == "floor":
        import scipy.sparse as sp

        from geneverse._core._chunks import CellChunks
        from geneverse._core._mi import marginal_stats, one_hot

        chunks = CellChunks(X)
        stats = marginal_stats(chunks, 10)
        onehot = one_hot(next(iter(chunks)), stats.edges, 10)
        left, right = onehot.T.tocsr(), onehot.tocsc()
        baseline = start_measuring()
        started = time.perf_counter()
        product = left @ right
        seconds = time.perf_counter() - started
        matrix = None
        task["gram_nnz"] = int(sp.csr_matrix(product).nnz)
    else:
        raise ValueError(tool)
    if matrix is not None:
        np.save(task["out"], matrix)
    return {**task, "seconds": seconds, "peak_rss_gb": peak_rss_gb(), "baseline_rss_gb": baseline}


def run_worker(task: dict) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(task)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"worker failed for {task}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- driver


def make_datasets(folder: Path, quick: bool) -> list[tuple[str, Path]]:
    import geneverse as gv

    datasets = []
    pbmc = gv.datasets.pbmc68k()
    path = folder / "pbmc68k.h5ad"
    pbmc.write_h5ad(path)
    datasets.append(("pbmc68k counts", path))
    sizes = (500, 1000) if quick else (500, 1000, 2000)
    for n_genes in sizes:
        # mean_counts=0.03 gives about 5% nonzero, like droplet data after gene selection
        data = gv.datasets.synthetic(10_000, n_genes, n_programs=10, seed=0, mean_counts=0.03)
        path = folder / f"synthetic_{n_genes}.h5ad"
        data.write_h5ad(path)
        datasets.append((f"synthetic NB {n_genes}", path))
    return datasets


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    keep = np.isfinite(a) & np.isfinite(b)
    return float(np.abs(a[keep] - b[keep]).max())


def benchmark(quick: bool) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, path in make_datasets(folder, quick):
            import anndata as ad

            shape = ad.read_h5ad(path, backed="r").shape
            counts = ad.read_h5ad(path).layers["counts"]
            density = counts.nnz / (shape[0] * shape[1])
            floor = run_worker({"tool": "floor", "target": "mi", "data": str(path), "out": ""})
            for target in TARGETS:
                ours = run_worker(
                    {"tool": "geneverse", "target": target, "data": str(path), "out": str(folder / "gv.npy")}
                )
                backend = "numba" if target == "mi" else None
                peer = run_worker(
                    {"tool": "genevector", "target": target, "backend": backend, "data": str(path),
                     "out": str(folder / "peer.npy")}
                )  # fmt: skip
                ours_matrix, peer_matrix_ = np.load(folder / "gv.npy"), np.load(folder / "peer.npy")
                row = {
                    "data": name, "cells": shape[0], "genes": shape[1], "density": density, "target": target,
                    "gv_s": ours["seconds"], "peer_s": peer["seconds"], "speedup": peer["seconds"] / ours["seconds"],
                    "gv_rss": ours["peak_rss_gb"], "peer_rss": peer["peak_rss_gb"],
                    "gv_rss_delta": ours["peak_rss_gb"] - ours["baseline_rss_gb"],
                    "peer_rss_delta": peer["peak_rss_gb"] - peer["baseline_rss_gb"],
                }  # fmt: skip
                if target == "mi":
                    sub = {"genes": MI_VALUE_GENES, "data": str(path), "target": "mi"}
                    reference = run_worker(
                        {**sub, "tool": "genevector", "backend": "numpy", "out": str(folder / "r.npy")}
                    )
                    run_worker({**sub, "tool": "geneverse", "out": str(folder / "c.npy")})
                    row["max_diff"] = max_difference(np.load(folder / "r.npy"), np.load(folder / "c.npy"))
                    row["diff_vs"] = f"numpy backend, {MI_VALUE_GENES} genes ({reference['seconds']:.1f} s)"
                    row["numba_vs_exact"] = max_difference(peer_matrix_, ours_matrix)
                    row["floor_s"] = floor["seconds"]
                    row["vs_floor"] = ours["seconds"] / floor["seconds"]
                    row["floor_rss"] = floor["peak_rss_gb"]
                    if shape[1] > 1000 and not task_has_cuda():
                        rows.append(row)
                        print(format_row(row), flush=True)
                        continue
                    torch_run = run_worker(
                        {"tool": "geneverse", "target": "mi", "backend": "torch", "data": str(path),
                         "out": str(folder / "t.npy")}
                    )  # fmt: skip
                    row["torch_s"] = torch_run["seconds"]
                    row["torch_equal"] = bool(np.array_equal(np.load(folder / "t.npy"), ours_matrix))
                else:
                    row["max_diff"] = max_difference(peer_matrix_, ours_matrix)
                    row["diff_vs"] = "full matrix"
                rows.append(row)
                print(format_row(row), flush=True)
    return rows


def task_has_cuda() -> bool:
    """The torch MI backend does dense GEMMs: timed on CPU only up to 1,000 genes, on any size with CUDA."""
    import torch

    return torch.cuda.is_available()


def format_row(row: dict) -> str:
    text = (
        f"{row['data']:18s} {row['cells']:>6d}x{row['genes']:<5d} {row['density']:5.1%} {row['target']:9s} "
        f"gv {row['gv_s']:8.3f} s  peer {row['peer_s']:8.3f} s  x{row['speedup']:7.1f}  "
        f"peak RSS gv {row['gv_rss']:.2f} (+{row['gv_rss_delta']:.2f}) / peer {row['peer_rss']:.2f} "
        f"(+{row['peer_rss_delta']:.2f}) GB  max|diff| {row['max_diff']:.1e} ({row['diff_vs']})"
    )
    if row["target"] == "mi":
        text += (
            f"\n{'':45s}floor (scipy O.T@O) {row['floor_s']:.3f} s -> gv/floor {row['vs_floor']:.2f}; "
            + (f"torch backend {row['torch_s']:.3f} s (equal: {row['torch_equal']}); " if "torch_s" in row else "")
            + f"numba vs exact max|diff| {row['numba_vs_exact']:.2f}"
        )
    return text


def markdown(rows: list[dict]) -> str:
    lines = [
        "| data | cells x genes | density | target | geneverse s | genevector s | speed-up "
        "| peak RSS gv / peer GB (+ during the call) "
        "| max abs diff | MI floor s | gv / floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        floor = f"{r['floor_s']:.3f} | {r['vs_floor']:.2f}" if r["target"] == "mi" else "- | -"
        lines.append(
            f"| {r['data']} | {r['cells']} x {r['genes']} | {r['density']:.1%} | {r['target']} | {r['gv_s']:.3f} | "
            f"{r['peer_s']:.3f} | {r['speedup']:.1f}x | {r['gv_rss']:.2f} (+{r['gv_rss_delta']:.2f}) / "
            f"{r['peer_rss']:.2f} (+{r['peer_rss_delta']:.2f}) | "
            f"{r['max_diff']:.1e} | {floor} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 2,000-gene set")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="benchmarks/results", help="folder for results.json and results.md")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if not peer_installed("genevector.metrics"):
        return 1
    import threadpoolctl

    print(f"threads: {os.cpu_count()} cores; BLAS: {threadpoolctl.threadpool_info()[0].get('internal_api', '?')}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")  # fmt: skip
    print(NUMBA_DEFECT)
    rows = benchmark(args.quick)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    table = markdown(rows)
    (out / "results.md").write_text(table + "\n")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
