"""Atlas scale: co-expression, cell embeddings and program scores on data read from disk in chunks.

`make bench-scale`. Synthetic negative-binomial counts (2,000 genes, about 5% nonzero, planted
programs) are written to .h5ad at two sizes (100,000 and 200,000 cells by default). Each
measurement runs in a fresh process and reports wall time, throughput and the process's peak RSS:

- memory: `read_h5ad` loads X, then the calls run (the baseline: memory grows with the cells);
- backed: `read_h5ad(backed="r")`, X streamed in chunks of 20,000 cells;
- dask: X as a dask array of CSR blocks read lazily from the file (`read_elem_lazy`), computed
  with dask's threaded scheduler in the same process;
- distributed: the same dask array on a `LocalCluster` of 2 single-threaded worker processes
  (peak RSS = client + both workers).

Calls: `coexpression(target="mi")`, `coexpression(target="pearson")`, `cell_embed` (100-dim gene
vectors), `score_programs` (10 programs). The bar: co-expression under 4 GB, independent of the
number of cells.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from coexpression import peak_rss_gb  # VmHWM: ru_maxrss would carry the parent's peak over exec

N_GENES = 2000
CHUNK = 20_000
MODES = ("memory", "backed", "dask", "distributed")


def write_counts(path: Path, n_cells: int, seed: int = 0) -> None:
    """NB counts generated block by block (memory O(block)) with one fixed gene structure."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_programs, per_program = 10, 50
    program = np.full(N_GENES, -1)
    program[rng.permutation(N_GENES)[: n_programs * per_program]] = np.repeat(np.arange(n_programs), per_program)
    base = 0.06 * rng.lognormal(0.0, 0.8, size=N_GENES)
    blocks = []
    for start in range(0, n_cells, 10_000):
        block_rng = np.random.default_rng([seed, start])
        n = min(10_000, n_cells - start)
        activity = block_rng.uniform(0, 1, size=(n, n_programs)) ** 4
        size = block_rng.lognormal(0.0, 0.3, size=n)
        gene_activity = np.where(program >= 0, activity[:, np.maximum(program, 0)], 0.0)
        mean = size[:, None] * base[None, :] * 4.0**gene_activity
        counts = block_rng.poisson(block_rng.gamma(2.0, mean / 2.0)).astype(np.float32)
        blocks.append(sp.csr_matrix(counts))
    X = sp.vstack(blocks, format="csr")
    var = pd.DataFrame(
        {"program": [f"P{p}" if p >= 0 else "none" for p in program]}, index=[f"g{i}" for i in range(N_GENES)]
    )
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n_cells)])
    ad.AnnData(X=X, obs=obs, var=var).write_h5ad(path)


def _open(path: str, mode: str):
    import anndata as ad

    if mode == "memory":
        return ad.read_h5ad(path)
    if mode == "backed":
        return ad.read_h5ad(path, backed="r")
    import h5py
    from anndata.experimental import read_elem_lazy

    backed = ad.read_h5ad(path, backed="r")  # obs/var only; X is replaced by the lazy array
    lazy = read_elem_lazy(h5py.File(path, "r")["X"], chunks=(CHUNK, -1))
    return ad.AnnData(X=lazy, obs=backed.obs.copy(), var=backed.var.copy())


def run_one(path: str, mode: str) -> dict:
    """One mode on one file, in this (fresh) process; prints a JSON line."""
    import geneverse as gv

    client = None
    if mode == "distributed":
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
        client = distributed.Client(cluster)
    imported_gb = peak_rss_gb()
    started = time.perf_counter()
    adata = _open(path, mode)
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    adata.varm["X_gv"] = rng.standard_normal((adata.n_vars, 100)).astype(np.float32)
    programs = {
        p: list(adata.var_names[adata.var["program"] == p]) for p in sorted(set(adata.var["program"])) if p != "none"
    }
    timings = {}
    peaks = {}
    calls = {
        "mi": lambda: gv.tl.coexpression(adata, "mi", chunk_size=CHUNK, use_cache=False, progress=False),
        "pearson": lambda: gv.tl.coexpression(adata, "pearson", chunk_size=CHUNK, use_cache=False, progress=False),
        "cell_embed": lambda: gv.tl.cell_embed(adata, chunk_size=CHUNK, progress=False),
        "score_programs": lambda: gv.tl.score_programs(adata, programs, chunk_size=CHUNK, progress=False),
    }
    for name, call in calls.items():
        begun = time.perf_counter()
        call()
        timings[name] = time.perf_counter() - begun
        peaks[name] = peak_rss_gb()
    workers_gb = 0.0
    if client is not None:
        workers_gb = sum(client.run(peak_rss_gb).values())
        client.close()
    return {
        "mode": mode,
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "load_s": load_s,
        "seconds": timings,
        "peak_rss_gb_after": peaks,
        "imported_rss_gb": imported_gb,
        "workers_peak_rss_gb": workers_gb,
        "mi_checksum": float(np.abs(np.asarray(adata.varp["gv_mi"])).sum()),
    }


def measure(path: Path, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    out = subprocess.run(
        [sys.executable, __file__, "--run-one", str(path), mode], capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"mode": mode, "error": out.stderr[-2000:]}
    return json.loads(lines[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,200000", help="cell counts, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES), help="modes to run")
    parser.add_argument("--data", default="benchmarks/results/scale", help="folder for the .h5ad files")
    parser.add_argument("--out", default="benchmarks/results", help="folder for scale.json")
    parser.add_argument("--run-one", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        print(json.dumps(run_one(*args.run_one)), flush=True)
        return 0
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    results = []
    for n_cells in (int(s) for s in args.sizes.split(",")):
        path = data / f"synthetic_{n_cells}.h5ad"
        if not path.exists():
            started = time.perf_counter()
            write_counts(path, n_cells)
            print(
                f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        for mode in args.modes.split(","):
            row = measure(path, mode)
            row["file_mb"] = path.stat().st_size / 1e6
            results.append(row)
            if "error" in row:
                print(f"{n_cells} cells {mode}: failed\n{row['error']}", flush=True)
                continue
            s, peak = row["seconds"], row["peak_rss_gb_after"]
            workers = f" + workers {row['workers_peak_rss_gb']:.2f}" if row["workers_peak_rss_gb"] else ""
            print(
                f"{n_cells:>7,d} cells {mode:11s} load {row['load_s']:5.1f} s | mi {s['mi']:6.1f} s "
                f"({n_cells / s['mi']:>8,.0f} cells/s) | pearson {s['pearson']:5.1f} s | cell_embed "
                f"{s['cell_embed']:5.1f} s | score_programs {s['score_programs']:5.1f} s | peak RSS after mi "
                f"{peak['mi']:.2f} GB, after all {peak['score_programs']:.2f} GB{workers} (imports "
                f"{row['imported_rss_gb']:.2f} GB)",
                flush=True,
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
