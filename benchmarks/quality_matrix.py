"""Planted-program recovery over a matrix of data settings: the numbers behind geneverse's defaults.

Not a unit test: run ``make bench-quality`` (``--quick`` for a 3-minute subset). Writes
``benchmarks/results/quality_matrix.json``, a markdown table (``quality_matrix.md``) and a figure
(``docs/img/quality_matrix.png``) that ``docs/quality.md`` shows.

Data: ``gv.datasets.synthetic`` around one base setting (single cells: 3,000 cells x 1,000 genes, 8
programs of 30 genes, 10% nonzero), one axis swept at a time, 3 seeds each (1 with ``--quick``);
bulk-like samples (``kind="bulk"``: 2,000 genes, 15 tissue programs, levels over five orders of
magnitude) over 50-1,000 samples; spatial data (the base setting with ``spatial=True``: programs as
smooth fields over a tissue, a 6-NN spatial graph from squidpy). Scored: ARI between
``var['gv_program']`` and the planted programs over the program genes, genes in two programs
(``overlap``) left out; seconds per step.

Pipelines, all in the same run:
- ``default``: ``coexpression`` (the default ``mi``, plug-in) on counts -> ``embed`` -> ``programs``;
- ``default, not refined``: the same vectors, ``programs(refine=False)`` (the clusters of the vectors
  alone, before the refinement against the expression);
- ``genevector_mi``: the same with GeneVector's estimator (the previous default);
- ``pearson``: the same with the ``pearson`` target on log-normalised values (what
  ``coexpression`` advises for few bulk samples);
- ``exp2vec``: ``coexpression("cooccurrence")`` -> ``embed(method="glove")`` -> ``programs`` (bulk only);
- ``graph_xcorr``: the same with the ``graph_xcorr`` target on log-normalised values (spatial only);
- ``correlation k-means`` (the simple baseline): Pearson on log-normalised data, k-means of its rows
  with the true number of programs + 1 (the baseline is told k; geneverse's Leiden is not).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

BASE = {"n_cells": 3000, "n_genes": 1000, "n_programs": 8, "genes_per_program": 30}
AXES = {
    "n_programs": [3, 8, 16],
    "n_genes": [300, 1000, 3000],
    "n_cells": [500, 3000, 20000],
    "mean_counts": [0.03, 0.08, 0.3],
    "genes_per_program": [10, 30, 60],
    "overlap": [0.0, 0.2],
    "rare_programs": [0, 2],
}
QUICK_AXES = {"n_programs": [3, 16], "mean_counts": [0.03], "genes_per_program": [10], "rare_programs": [2]}
BULK = {"n_genes": 2000, "n_programs": 15, "kind": "bulk"}
BULK_SAMPLES = [50, 328, 1000]
SPATIAL = {**BASE, "spatial": True}  # programs as smooth fields over a tissue
NOT_SINGLE_CELL = ("bulk samples", "spatial")


def _settings(quick: bool) -> list[tuple[str, object, dict]]:
    out = [("base", "", dict(BASE))]
    for axis, values in (QUICK_AXES if quick else AXES).items():
        for value in values:
            setting = {**BASE, axis: value}
            if setting == BASE or value == {"mean_counts": 0.08, "overlap": 0.0, "rare_programs": 0}.get(axis):
                continue  # the base setting itself
            if axis == "n_genes":  # keep the programs' share of the genes
                setting["genes_per_program"] = max(5, int(30 * value / 1000))
            out.append((axis, value, setting))
    if not quick:
        out.append(("spatial", "3000 cells", dict(SPATIAL)))
    for samples in [328] if quick else BULK_SAMPLES:
        out.append(("bulk samples", samples, {**BULK, "n_cells": samples}))
    return out


def _ari(adata, labels) -> float:
    from sklearn.metrics import adjusted_rand_score

    truth = adata.var["program"].astype(str).to_numpy()
    keep = (truth != "none") & (adata.var["second_program"].astype(str).to_numpy() == "none")
    return float(adjusted_rand_score(truth[keep], np.asarray(labels).astype(str)[keep]))


def _pipeline(adata, target: str, method: str, layer: str | None) -> dict:
    import geneverse as gv

    seconds = {}
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Few dense samples")  # the bulk advice, measured here
        gv.tl.coexpression(adata, target, layer=layer, key_added="bench", progress=False, use_cache=False)
    seconds["coexpression"] = time.perf_counter() - started
    started = time.perf_counter()
    gv.tl.embed(adata, "bench", method=method, progress=False)
    seconds["embed"] = time.perf_counter() - started
    started = time.perf_counter()
    gv.tl.programs(adata, progress=False)
    seconds["programs"] = time.perf_counter() - started
    return {"ari": _ari(adata, adata.var["gv_program"]), "found": int(adata.var["gv_program"].nunique()), **seconds}


def _unrefined(adata) -> dict:
    """The vectors of the pipeline just run, clustered without the refinement against the expression."""
    import geneverse as gv

    started = time.perf_counter()
    gv.tl.programs(adata, refine=False, key_added="unrefined", progress=False)
    seconds = time.perf_counter() - started
    return {
        "ari": _ari(adata, adata.var["unrefined"]),
        "found": int(adata.var["unrefined"].nunique()),
        "programs": seconds,
    }


def _log_normalise(adata) -> None:
    """X = log1p of the counts scaled to the median total (scanpy's standard), counts kept in the layer."""
    import scanpy as sc

    adata.X = adata.layers["counts"].copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)


def _baseline(adata, k: int) -> dict:
    from sklearn.cluster import KMeans

    import geneverse as gv

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gv.tl.coexpression(adata, "pearson", key_added="bench", progress=False, use_cache=False)
    rows = np.nan_to_num(np.asarray(adata.varp["bench"]))
    labels = KMeans(k, n_init=10, random_state=0).fit_predict(rows)
    return {"ari": _ari(adata, labels), "found": k, "seconds": time.perf_counter() - started}


def run(quick: bool, only: list[str] | None = None, save=None) -> list[dict]:
    """The matrix; ``save(rows)`` is called after every setting, so a stopped run keeps what it measured."""
    import geneverse as gv

    rows = []
    seeds = [0] if quick else [0, 1, 2]
    for axis, value, setting in _settings(quick):
        if only and axis not in only:
            continue
        bulk = setting.get("kind") == "bulk"
        pipelines = [
            ("default", "mi", "genevector", "counts"),
            ("genevector_mi", "genevector_mi", "genevector", "counts"),
            ("pearson", "pearson", "genevector", None),
        ]
        if bulk:
            pipelines.append(("exp2vec", "cooccurrence", "glove", "counts"))
        if setting.get("spatial"):
            pipelines.append(("graph_xcorr", "graph_xcorr", "genevector", None))
        for seed in seeds:
            adata = gv.datasets.synthetic(seed=seed, **setting)
            _log_normalise(adata)
            if setting.get("spatial"):
                gv.graphs.spatial_graph(adata, coord_type="generic", n_neighs=6)
            for name, target, method, layer in pipelines:
                result = _pipeline(adata, target, method, layer)
                rows.append({"axis": axis, "value": value, "seed": seed, "pipeline": name, **result})
                if name == "default":  # the same vectors, programs as clustered (no refinement)
                    row = {"axis": axis, "value": value, "seed": seed, "pipeline": "default, not refined"}
                    rows.append({**row, **_unrefined(adata)})
            baseline = _baseline(adata, setting["n_programs"] + 1)
            rows.append({"axis": axis, "value": value, "seed": seed, "pipeline": "correlation k-means", **baseline})
            shown = ", ".join(f"{r['pipeline']} {r['ari']:.2f}" for r in rows[-len(pipelines) - 2 :])
            print(f"{axis}={value} seed {seed}: {shown}", flush=True)
            if save is not None:
                save(rows)
    return rows


def table(rows: list[dict]) -> str:
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["setting"] = [f"{a}={v}" if a != "base" else "base" for a, v in zip(frame.axis, frame.value, strict=True)]
    wide = frame.pivot_table(index="setting", columns="pipeline", values="ari", aggfunc="median", sort=False)
    worst = frame.pivot_table(index="setting", columns="pipeline", values="ari", aggfunc="min", sort=False)
    lines = ["| setting | " + " | ".join(f"{c} (median / worst)" for c in wide.columns) + " |"]
    lines.append("|---" * (len(wide.columns) + 1) + "|")
    for setting in wide.index:
        cells = [
            "-" if np.isnan(wide.at[setting, c]) else f"{wide.at[setting, c]:.2f} / {worst.at[setting, c]:.2f}"
            for c in wide.columns
        ]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    single = frame[~frame.axis.isin(NOT_SINGLE_CELL)].groupby(["pipeline", "axis", "value"])["ari"].median()
    summary = single.groupby("pipeline").agg(["median", "min"])
    lines.append("")
    lines.append("Single-cell settings, per-setting medians: " + "; ".join(
        f"{p} median {r['median']:.2f}, worst {r['min']:.2f}" for p, r in summary.iterrows()
    ))  # fmt: skip
    return "\n".join(lines)


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame(rows)
    base = frame[frame.axis == "base"]
    defaults = {"overlap": 0.0, "rare_programs": 0, "mean_counts": 0.08}
    axes_names = [a for a in dict.fromkeys(frame.axis) if a != "base"]
    colours = {"default": "tab:blue", "genevector_mi": "tab:orange", "correlation k-means": "tab:grey"}
    colours.update({"exp2vec": "tab:red", "pearson": "tab:green", "graph_xcorr": "tab:purple"})
    colours["default, not refined"] = "tab:cyan"
    fig, axes = plt.subplots(1, len(axes_names), figsize=(2.6 * len(axes_names), 2.8), sharey=True, squeeze=False)
    for ax, axis in zip(axes[0], axes_names, strict=True):
        sub = frame[frame.axis == axis]
        if axis in BASE or axis in defaults:  # the base setting is one point of every single-cell axis
            sub = pd.concat([sub, base.assign(axis=axis, value=BASE.get(axis, defaults.get(axis)))])
        for pipeline, group in sub.groupby("pipeline", sort=False):
            medians = group.groupby("value", sort=True)["ari"].median()
            ax.plot(
                [str(v) for v in medians.index], medians.to_numpy(), marker="o", label=pipeline, color=colours[pipeline]
            )
        ax.set_title(axis, fontsize=9)
        ax.set_ylim(-0.05, 1.05)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("program ARI (median over seeds)")
    handles = {}  # every pipeline once, whichever panels it appears in
    for ax in axes[0]:
        handles.update(zip(*reversed(ax.get_legend_handles_labels()), strict=True))
    axes[0, -1].legend(
        handles.values(), handles.keys(), fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.02, 0.5)
    )
    fig.tight_layout()
    from geneverse._files import save_figure

    save_figure(fig, path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, a few settings (about 3 minutes)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the JSON and the table")
    parser.add_argument("--figure", default="docs/img/quality_matrix.png", help="where the figure goes")
    parser.add_argument("--from-json", help="start from an earlier run's JSON (redraw, or rerun --only axes)")
    parser.add_argument("--only", nargs="+", help="run only these axes (e.g. 'bulk samples'), replacing them")
    args = parser.parse_args()
    started = time.perf_counter()
    from geneverse._files import write_text

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = json.loads(Path(args.from_json).read_text()) if args.from_json else []
    if args.only or not args.from_json:
        kept = [r for r in rows if r["axis"] not in (args.only or [])]

        def save(new: list[dict]) -> None:
            write_text(out / "quality_matrix.json", json.dumps(kept + new, indent=1))

        rows = kept + run(args.quick, args.only, save)
    write_text(out / "quality_matrix.json", json.dumps(rows, indent=1))
    markdown = table(rows)
    write_text(out / "quality_matrix.md", markdown + "\n")
    figure(rows, Path(args.figure))
    print(markdown)
    print(f"matrix: {len(rows)} runs in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
