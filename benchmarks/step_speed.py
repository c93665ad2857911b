"""Seconds per default step, this checkout against an earlier commit, on the same 2,000-gene data.

Not a unit test: run ``python benchmarks/step_speed.py`` (``--base REV``, default ``2c0ee4e``, the
commit the quality issue measured from). The earlier commit is checked out into a temporary git
worktree and imported from there (``PYTHONPATH``) with the same virtual environment; both run the
same steps with default parameters on the same files, each step's best of ``--repeats`` runs:
``coexpression`` (``mi`` and ``cooccurrence``), ``embed`` (GeneVector's model and GloVe),
``programs``, ``score_programs``, ``cell_embed``. Data: single-cell-like counts (10,000 cells x
2,000 genes, 8 programs) and bulk-like counts (328 samples x 2,000 genes, 15 tissues), made once by
this checkout's ``gv.datasets.synthetic``. Writes ``benchmarks/results/step_speed.{json,md}``.
Defaults changed between the commits (50 dimensions, Leiden resolution and iterations, GloVe's
start), so a step's time is that of what a user gets by default, not of the same computation.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

DATA = {
    "single-cell 10,000 x 2,000": {"n_cells": 10_000, "n_genes": 2000, "n_programs": 8},
    "bulk 328 x 2,000": {"n_cells": 328, "n_genes": 2000, "n_programs": 15, "kind": "bulk"},
}


def make_data(folder: Path) -> dict[str, str]:
    """The data sets as h5ad files (counts in ``layers['counts']``, log-normalised ``X``)."""
    import scanpy as sc

    import geneverse as gv

    paths = {}
    for i, (name, setting) in enumerate(DATA.items()):
        adata = gv.datasets.synthetic(seed=0, **setting)
        adata.X = adata.layers["counts"].copy()
        sc.pp.normalize_total(adata)
        sc.pp.log1p(adata)
        paths[name] = str(folder / f"data{i}.h5ad")
        adata.write_h5ad(paths[name])
    return paths


def steps(path: str, repeats: int) -> dict[str, float]:
    """Best seconds of each default step on one file (run inside the checkout being timed)."""
    import anndata as ad

    import geneverse as gv

    adata = ad.read_h5ad(path)
    calls = {
        "coexpression mi": lambda: gv.tl.coexpression(adata, "mi", layer="counts", progress=False, use_cache=False),
        "embed": lambda: gv.tl.embed(adata, "gv_mi", progress=False),
        "programs": lambda: gv.tl.programs(adata),
        "score_programs": lambda: gv.tl.score_programs(adata, progress=False),
        "cell_embed": lambda: gv.tl.cell_embed(adata, progress=False),
        "coexpression cooccurrence": lambda: gv.tl.coexpression(
            adata, "cooccurrence", layer="counts", progress=False, use_cache=False
        ),
        "embed glove": lambda: gv.tl.embed(adata, "gv_cooccurrence", method="glove", progress=False, key_added="g"),
    }
    best: dict[str, float] = {}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - started)
    return best


def run_in(src: Path, paths: dict[str, str], repeats: int) -> dict:
    """Run the ``--child`` mode of this script with ``src`` first on the path; return its JSON answer."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, __file__, "--child", json.dumps(paths), "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"timing the checkout at {src} failed:\n{done.stderr}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(answer.pop("file")).resolve().is_relative_to(src.resolve()):
        raise RuntimeError(f"the timed run did not import geneverse from {src}")
    return answer


def table(base: str, before: dict, after: dict) -> str:
    lines = [f"| data | step | {base} (s) | this checkout (s) | ratio |", "|---|---|---|---|---|"]
    for data, old in before.items():
        for step, seconds in old.items():
            new = after[data][step]
            lines.append(f"| {data} | {step} | {seconds:.3f} | {new:.3f} | {new / seconds:.2f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="2c0ee4e", help="the earlier commit (default 2c0ee4e)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per step; the best counts")
    parser.add_argument("--out", default="benchmarks/results", help="folder for step_speed.{json,md}")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import geneverse as gv

        paths = json.loads(args.child)
        print(json.dumps({"file": gv.__file__, **{name: steps(p, args.repeats) for name, p in paths.items()}}))
        return 0
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        worktree = Path(folder) / "base"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(worktree), args.base], check=True)
        try:
            paths = make_data(Path(folder))
            before = run_in(worktree / "src", paths, args.repeats)
            after = run_in(root / "src", paths, args.repeats)
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(worktree)], check=False)
            subprocess.run(["git", "-C", str(root), "worktree", "prune"], check=False)
    from geneverse._files import write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    markdown = table(args.base, before, after)
    write_text(out / "step_speed.json", json.dumps({"base": args.base, "before": before, "after": after}, indent=1))
    write_text(out / "step_speed.md", markdown + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
