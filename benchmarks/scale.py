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

Genes axis (`make bench-scale-genes`, `--genes 2000,5000,10000,20000,30000`): 10,000 cells at about
5% nonzero, one planted program per 200 genes, the default pipeline from `coexpression` to
`write_h5ad` in a fresh process per gene count, seconds and peak memory (VmHWM, reset before each
step) per step, the epochs `embed` ran and the programs ARI on the planted genes. Writes
`scale_genes.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from coexpression import peak_rss_gb  # VmHWM: ru_maxrss would carry the parent's peak over exec

N_GENES = 2000
GENES_AXIS_LEVEL = 0.035  # about 5% nonzero, as the whole-transcriptome issue's 10x data
CHUNK = 20_000
MODES = ("memory", "backed", "dask", "distributed")


def write_counts(path: Path, n_cells: int, seed: int = 0, n_genes: int = N_GENES, level: float = 0.06) -> None:
    """NB counts generated block by block (memory O(block)) with one fixed gene structure.

    10 programs of 50 genes at 2,000 genes; with more genes, one program per 200 genes (a quarter
    of the genes in programs, as at 2,000). ``level`` sets the density: 0.06 about 8% nonzero, 0.035 about 5%.
    """
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    n_programs, per_program = max(10, n_genes // 200), 50
    program = np.full(n_genes, -1)
    program[rng.permutation(n_genes)[: n_programs * per_program]] = np.repeat(np.arange(n_programs), per_program)
    base = level * rng.lognormal(0.0, 0.8, size=n_genes)
    blocks = []
    rows = 10_000 * N_GENES // max(n_genes, N_GENES)  # about 20 million values per block
    for start in range(0, n_cells, rows):
        block_rng = np.random.default_rng([seed, start])
        n = min(rows, n_cells - start)
        activity = block_rng.uniform(0, 1, size=(n, n_programs)) ** 4
        size = block_rng.lognormal(0.0, 0.3, size=n)
        gene_activity = np.where(program >= 0, activity[:, np.maximum(program, 0)], 0.0)
        mean = size[:, None] * base[None, :] * 4.0**gene_activity
        counts = block_rng.poisson(block_rng.gamma(2.0, mean / 2.0)).astype(np.float32)
        blocks.append(sp.csr_matrix(counts))
    X = sp.vstack(blocks, format="csr")
    var = pd.DataFrame(
        {"program": [f"P{p}" if p >= 0 else "none" for p in program]}, index=[f"g{i}" for i in range(n_genes)]
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


def _reset_peak() -> None:
    """Start a new VmHWM window (Linux: writing 5 to clear_refs resets the peak to the current RSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_pipeline(path: str, out_dir: str) -> dict:
    """The default pipeline from co-expression to write_h5ad on one file, time and peak memory per step."""
    import anndata as ad
    import sklearn.metrics

    import geneverse as gv

    imported_gb = peak_rss_gb()
    adata = ad.read_h5ad(path)
    truth = adata.var["program"].to_numpy()
    a, b = adata.var_names[0], adata.var_names[1]
    written = Path(out_dir) / "pipeline.h5ad"
    steps = {
        "coexpression": lambda: gv.tl.coexpression(adata, use_cache=False, progress=False),
        "embed": lambda: gv.tl.embed(adata, progress=False),
        "programs": lambda: gv.tl.programs(adata),
        "similar_pairs": lambda: gv.tl.similar_pairs(adata, a, b, n=10),
        "gene_map": lambda: gv.pl.gene_map(adata, show=False),
        "cell_embed": lambda: gv.tl.cell_embed(adata, progress=False),
        "score_programs": lambda: gv.tl.score_programs(adata, progress=False),
        "write_h5ad": lambda: adata.write_h5ad(written),
    }
    seconds, peaks = {}, {}
    for name, call in steps.items():
        _reset_peak()
        begun = time.perf_counter()
        call()
        seconds[name] = time.perf_counter() - begun
        peaks[name] = peak_rss_gb()
    planted = truth != "none"
    found = adata.var["gv_program"].to_numpy()[planted]
    return {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "density": float(adata.X.nnz / (adata.n_obs * adata.n_vars)),
        "seconds": seconds,
        "peak_gb": peaks,
        "imported_gb": imported_gb,
        "epochs": int(adata.uns["gv"]["X_gv"]["epochs_run"]),
        "programs_ari": float(sklearn.metrics.adjusted_rand_score(truth[planted], found)),
        "h5ad_mb": written.stat().st_size / 1e6,
    }


def genes_axis(sizes: list[int], n_cells: int, data: Path) -> list[dict]:
    """One fresh process per gene count: the default pipeline's time and peak memory per step."""
    rows = []
    for n_genes in sizes:
        path = data / f"genes_{n_cells}x{n_genes}_5pc.h5ad"
        if not path.exists():
            write_counts(path, n_cells, n_genes=n_genes, level=GENES_AXIS_LEVEL)
        row = measure(path, "pipeline")
        rows.append(row)
        if "error" in row:
            print(f"{n_genes} genes: failed\n{row['error']}", flush=True)
            continue
        s, peak = row["seconds"], row["peak_gb"]
        print(
            f"{n_genes:>6,d} genes ({row['density']:.1%} nonzero): "
            + " | ".join(f"{k} {s[k]:.1f} s {peak[k]:.2f} GB" for k in s)
            + f" | whole peak {max(peak.values()):.2f} GB, {row['epochs']} epochs, programs ARI "
            f"{row['programs_ari']:.3f}, h5ad {row['h5ad_mb']:.0f} MB",
            flush=True,
        )
    return rows


def genes_table(rows: list[dict]) -> str:
    """Markdown: one row per gene count, seconds (peak GB) per step."""
    done = [r for r in rows if "error" not in r]
    if not done:
        return ""
    steps = list(done[0]["seconds"])
    lines = [
        "| genes | " + " | ".join(steps) + " | whole peak GB | epochs | programs ARI | h5ad MB |",
        "|---" * (len(steps) + 5) + "|",
    ]
    for r in done:
        cells = [f"{r['seconds'][k]:.1f} s ({r['peak_gb'][k]:.2f} GB)" for k in steps]
        lines.append(
            f"| {r['n_genes']:,d} | " + " | ".join(cells) + f" | {max(r['peak_gb'].values()):.2f} | {r['epochs']} | "
            f"{r['programs_ari']:.3f} | {r['h5ad_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


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
    parser.add_argument(
        "--genes",
        default="",
        help="gene counts for the genes axis, e.g. 2000,5000,10000,20000,30000 (cells axis skipped)",
    )
    parser.add_argument("--genes-cells", type=int, default=10_000, help="cells on the genes axis")
    parser.add_argument("--run-one", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        path, mode = args.run_one
        if mode == "pipeline":
            with tempfile.TemporaryDirectory(dir=Path(path).parent) as out_dir:
                print(json.dumps(run_pipeline(path, out_dir)), flush=True)
        else:
            print(json.dumps(run_one(path, mode)), flush=True)
        return 0
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if args.genes:
        rows = genes_axis([int(g) for g in args.genes.split(",")], args.genes_cells, data)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "scale_genes.json").write_text(json.dumps(rows, indent=1))
        (out / "scale_genes.md").write_text(genes_table(rows))
        return 0
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
