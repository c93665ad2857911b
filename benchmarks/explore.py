"""geneverse explore at whole-transcriptome size: how fast the page's API answers over HTTP.

`make bench-explore`. 20,000 genes (default; `--genes`) with 50-dim vectors in 100 planted programs,
Leiden programs, Ensembl IDs and aliases in `var`. The explorer is started as users start it
(`gv.viewer.explore`, a real server on 127.0.0.1) and every query goes over HTTP:

- `/api/genes` completion for 200 random prefixes of 1-4 characters;
- `/api/similar` (n=10) and `/api/analogy` (n=10) for 200 random genes / triples;
- `/api/pairs` (exact, n=10) for 10 random pairs;
- `/api/map`: the UMAP computed once in the background at start-up (timed), then served; and read
  from the file when `gv.pl.gene_map` stored the layout (start-up to map, timed).

The same queries are also timed as direct `gv.tl` calls in the same run (the baseline: what the
HTTP layer adds). The bars (issue #20): completion, similar and analogy under 100 ms, pairs under
2 s. Writes `benchmarks/results/explore.{json,md}`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"


def make_data(n_genes: int, dims: int = 50, seed: int = 0):
    import anndata as ad
    import scipy.sparse as sp

    import geneverse as gv

    rng = np.random.default_rng(seed)
    n_programs = max(2, n_genes // 200)
    centres = rng.normal(size=(n_programs, dims))
    program = rng.integers(0, n_programs, n_genes)
    vectors = centres[program] + 0.8 * rng.normal(size=(n_genes, dims))
    names = [f"GENE{i:05d}" for i in range(n_genes)]
    adata = ad.AnnData(X=sp.csr_matrix((2, n_genes), dtype=np.float32))
    adata.var_names = names
    adata.var["gene_ids"] = [f"ENSG{i:011d}" for i in range(n_genes)]
    adata.var["aliases"] = [f"ALIAS{i}, OLD{i}" for i in range(n_genes)]
    adata.varm["X_gv"] = vectors.astype(np.float32)
    gv.tl.programs(adata, progress=False)
    return adata


def timed(call, repeats: list) -> dict:
    seconds = []
    for args in repeats:
        started = time.perf_counter()
        call(*args)
        seconds.append(time.perf_counter() - started)
    ms = np.array(seconds) * 1000
    return {
        "n": len(ms),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "max_ms": float(ms.max()),
    }


def http(url: str, path: str, **params) -> dict:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}{path}?{query}", timeout=600) as response:
        body = json.load(response)
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")
    return body


def run(n_genes: int) -> dict:
    import geneverse as gv
    from geneverse.pl._maps import _store_gene_layout

    started = time.perf_counter()
    adata = make_data(n_genes)
    print(f"{n_genes} genes: data and Leiden programs in {time.perf_counter() - started:.1f} s", flush=True)
    rng = np.random.default_rng(1)
    names = np.asarray(adata.var_names)
    genes = [(str(g),) for g in rng.choice(names, 200)]
    triples = [tuple(str(g) for g in rng.choice(names, 3, replace=False)) for _ in range(200)]
    pairs = [tuple(str(g) for g in rng.choice(names, 2, replace=False)) for _ in range(10)]
    prefixes = [(str(g)[: int(k)],) for g, k in zip(rng.choice(names, 200), rng.integers(1, 5, 200), strict=True)]
    prefixes = [(p.lower() if i % 2 else p,) for i, (p,) in enumerate(prefixes)]

    out: dict = {"genes": n_genes, "dims": 50}
    started = time.perf_counter()
    server = gv.viewer.explore(adata)
    out["startup_s"] = time.perf_counter() - started
    try:
        url = server.url
        started = time.perf_counter()
        layout = server.explorer.map(wait=3600)
        out["map_compute_s"] = time.perf_counter() - started
        assert layout is not None and layout["source"] == "computed"
        out["map_payload_mb"] = len(json.dumps(layout)) / 1e6
        out["http"] = {
            "genes": timed(lambda p: http(url, "api/genes", prefix=p), prefixes),
            "similar": timed(lambda g: http(url, "api/similar", gene=g, n=10), genes),
            "analogy": timed(lambda a, b, c: http(url, "api/analogy", a=a, b=b, c=c, n=10), triples),
            "pairs": timed(lambda a, b: http(url, "api/pairs", a=a, b=b, n=10), pairs),
            "map": timed(lambda: http(url, "api/map"), [()] * 5),
            "gene": timed(lambda g: http(url, "api/gene", gene=g), genes[:50]),
        }
    finally:
        server.stop()
    out["direct"] = {
        "similar": timed(lambda g: gv.tl.similar(adata, g, 10), genes),
        "analogy": timed(lambda a, b, c: gv.tl.analogy(adata, a, b, c, n=10), triples),
        "pairs": timed(lambda a, b: gv.tl.similar_pairs(adata, a, b, n=10, progress=False), pairs),
    }
    # the layout stored by gv.pl.gene_map in the file: read at start-up instead of computed
    rows = np.flatnonzero(np.isfinite(adata.varm["X_gv"]).all(axis=1))
    points = np.c_[layout["x"], layout["y"]]
    _store_gene_layout(adata, "X_gv", gv.get.gene_vectors(adata), rows, points, "umap", 0, 15)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "genes.h5ad"
        adata.write_h5ad(path)
        started = time.perf_counter()
        server = gv.viewer.explore(path)
        try:
            stored = http(server.url, "api/map")["results"][0]
            out["stored_map_startup_s"] = time.perf_counter() - started
            assert stored["source"] == "stored"
        finally:
            server.stop()
    return out


def report(result: dict) -> str:
    lines = [
        f"# geneverse explore: {result['genes']:,} genes x {result['dims']} dims",
        "",
        f"Start-up {result['startup_s']:.2f} s; gene map (UMAP) computed once in the background in "
        f"{result['map_compute_s']:.1f} s ({result['map_payload_mb']:.2f} MB of JSON); read from a file where "
        f"`gv.pl.gene_map` stored it: start-up to map in {result['stored_map_startup_s']:.2f} s.",
        "",
        "| query | over HTTP: median | p95 | max | direct gv.tl call: median | bar |",
        "|---|---|---|---|---|---|",
    ]
    bars = {"genes": 100, "similar": 100, "analogy": 100, "pairs": 2000, "map": None, "gene": None}
    for name, row in result["http"].items():
        direct = result["direct"].get(name)
        bar = bars[name]
        met = "" if bar is None else (f"< {bar} ms: " + ("met" if row["max_ms"] < bar else "**missed**"))
        baseline = "" if direct is None else f"{direct['median_ms']:.1f} ms"
        lines.append(
            f"| /api/{name} (x{row['n']}) | {row['median_ms']:.1f} ms | {row['p95_ms']:.1f} ms | "
            f"{row['max_ms']:.1f} ms | {baseline} | {met} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=20_000)
    args = parser.parse_args()
    result = run(args.genes)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explore.json").write_text(json.dumps(result, indent=2))
    text = report(result)
    (RESULTS / "explore.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
