"""The ``geneverse`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._keys import Key


def _demo(args: argparse.Namespace) -> int:
    import matplotlib

    from ._demo import run_demo

    matplotlib.use("Agg")  # the command line draws to files only; a library call keeps the user's backend
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder (it is created if missing).")
    run_demo(args.out, progress=not args.no_progress, use_cache=not args.no_cache)
    return 0


def _genes(value: str | None) -> str | list[str] | None:
    """``--genes``: a boolean var column name, or comma-separated gene names."""
    if value is None or "," not in value:
        return value
    return [g.strip() for g in value.split(",") if g.strip()]


def _add_input_options(parser: argparse.ArgumentParser, target_help: str) -> None:
    """The options ``coexpression`` and ``embed`` share: input file, target, layer, genes."""
    parser.add_argument("input", help="input .h5ad")
    parser.add_argument("--target", default="mi", help=target_help)
    parser.add_argument("--layer", default=None, help="layer to use instead of X (e.g. counts)")
    parser.add_argument(
        "--genes", default=None, help="boolean var column (e.g. highly_variable) or comma-separated genes"
    )
    parser.add_argument(
        "--batch-key", default=None, help="obs column of batches: the target within each batch, averaged"
    )


def _check_batches(adata: Any, batch_key: str | None, reference: str | None = None) -> None:
    """The batches (``--batch-key``, ``--reference``) checked before any computation."""
    if batch_key is not None:
        from .tl._batch import batch_codes

        batch_codes(adata, batch_key, reference)


def _positive(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{option} must be a positive integer, got {value}.")


def _input_file(path: str, option: str = "input") -> None:
    if not Path(path).exists():
        raise FileNotFoundError(f"{option}: no such file: {path}")
    if Path(path).is_dir():
        raise ValueError(f"{option}: {path} is a folder; give an .h5ad file.")


def _output(path: str | None, option: str) -> None:
    """Check an output path before any work (a folder, a missing folder, no write permission)."""
    from ._files import check_output_path

    if path is not None:
        check_output_path(path, option)


def _input_and_output(args: argparse.Namespace) -> str:
    """The checked input .h5ad and where the result goes (``--output``, default: the input, replaced atomically)."""
    _input_file(args.input)
    output = args.output or args.input
    _output(output, "--output")
    return output


def _coexpression(args: argparse.Namespace) -> int:
    import geneverse as gv

    from ._files import write_h5ad

    output = _input_and_output(args)
    _output(args.table, "--table")
    if args.table is not None and Path(args.table).resolve() == Path(output).resolve():
        raise ValueError(f"--table {args.table} is the .h5ad file the result goes to; give the table its own name.")
    _positive(args.top, "--top")
    _positive(args.n_bins, "--n-bins")
    adata = _read(args.input)
    _check_batches(adata, args.batch_key)
    kwargs = {"n_bins": args.n_bins} if args.n_bins is not None else None
    gv.tl.coexpression(
        adata,
        args.target,
        layer=args.layer,
        genes=_genes(args.genes),
        key_added=args.key_added,
        batch_key=args.batch_key,
        target_kwargs=kwargs,
        signed_mi=not args.unsigned,
        mi_backend=args.mi_backend,
        use_cache=not args.no_cache,
        progress=not args.no_progress,
    )
    key = args.key_added or f"gv_{args.target}"
    write_h5ad(adata, output)  # atomic: the input survives a failed write
    print(f"wrote varp[{key!r}] to {output}")
    if args.table:
        gv.io.write_coexpression(adata, args.table, key)
        print(f"wrote the genes x genes table to {args.table}")
    print(gv.io.top_pairs(adata, key, n=args.top).to_string(index=False))
    return 0


def _read(path: str):
    """Read an .h5ad file; a file that is not one gives a one-line ValueError."""
    import anndata as ad

    _input_file(path)
    try:
        return ad.read_h5ad(path)
    except Exception as error:  # noqa: BLE001 - whatever a damaged file raises, the user gets one line
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path} is not a readable .h5ad file ({reason}).") from None


def _run_queries(args: argparse.Namespace, arity: int, query: Callable[[list[str]], object], title: str) -> int:
    """Answer one query from the command line, or one per stdin line with ``--interactive``."""
    import geneverse as gv

    from ._files import write_text
    from .io._markdown import escape

    _positive(args.n, "--n")
    _output(args.markdown, "--markdown")
    if not args.interactive and len(args.genes) != arity:
        raise ValueError(f"{title} needs {arity} gene(s), got {len(args.genes)} (or use --interactive).")
    adata = _read(args.input)
    reports = []

    def answer(genes: list[str]) -> bool:
        try:
            table = query(adata, genes)
        except (KeyError, ValueError) as error:
            print(f"geneverse: {error.args[0] if error.args else error}", file=sys.stderr)
            return False
        print(table.to_string(index=False))
        heading = escape(f"{title} {' '.join(genes)}")
        reports.append(f"## {heading}\n\n" + gv.io.to_markdown(table, adata))
        return True

    if args.interactive:
        print(f"{title}: type {arity} gene(s) per line; end with Ctrl-D.", file=sys.stderr)
        for line in sys.stdin:
            genes = line.split()
            if not genes:
                continue
            if len(genes) != arity:
                print(f"geneverse: expected {arity} gene(s), got {len(genes)}", file=sys.stderr)
                continue
            answer(genes)
            sys.stdout.flush()
        ok = True
    else:
        ok = answer(args.genes)
    if args.markdown and reports:
        write_text(args.markdown, "\n".join(reports))
        print(f"wrote {args.markdown}", file=sys.stderr)
    return 0 if ok else 2


def _similar(args: argparse.Namespace) -> int:
    import geneverse as gv

    def query(adata, genes):
        return gv.tl.similar(
            adata, genes[0], args.n, vectors_key=args.key, metric=args.metric, gene_symbols=args.gene_symbols
        )

    return _run_queries(args, 1, query, "similar to")


def _analogy(args: argparse.Namespace) -> int:
    import geneverse as gv

    def query(adata, genes):
        return gv.tl.analogy(
            adata, *genes, n=args.n, vectors_key=args.key, method=args.method, gene_symbols=args.gene_symbols
        )

    return _run_queries(args, 3, query, "analogy")


def _pairs(args: argparse.Namespace) -> int:
    import geneverse as gv

    def query(adata, genes):
        return gv.tl.similar_pairs(adata, *genes, n=args.n, vectors_key=args.key, gene_symbols=args.gene_symbols)

    return _run_queries(args, 2, query, "pairs like")


def _embed(args: argparse.Namespace) -> int:
    import geneverse as gv

    from ._files import write_h5ad

    output = _input_and_output(args)
    _positive(args.n_components, "--n-components")
    _positive(args.epochs, "--epochs")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}.")
    adata = _read(args.input)
    _check_batches(adata, args.batch_key)
    target_key = f"gv_{args.target}"
    gv.tl.coexpression(
        adata, args.target, layer=args.layer, genes=_genes(args.genes), key_added=target_key,
        batch_key=args.batch_key, progress=not args.no_progress,
    )  # fmt: skip
    gv.tl.embed(
        adata,
        target_key,
        n_components=args.n_components,
        method=args.method,
        epochs=args.epochs,
        seed=args.seed,
        device=args.device,
        key_added=args.key_added,
        progress=not args.no_progress,
    )
    record = gv.get.record(adata, args.key_added)
    write_h5ad(adata, output)  # atomic: the input survives a failed write
    print(
        f"trained varm[{args.key_added!r}] ({args.method}, {args.n_components} dims) on varp[{target_key!r}]: "
        f"{record['epochs_run']} epochs, final loss {record['final_loss']:.4g}, {record['seconds']:.1f} s; "
        f"wrote {output}"
    )
    return 0


def _cells_if_missing(adata: Any, args: argparse.Namespace) -> None:
    """Embed the cells with the gene vectors the file holds, unless ``obsm[args.cells_key]`` exists."""
    import geneverse as gv

    if args.cells_key not in adata.obsm:
        gv.tl.cell_embed(
            adata, args.vectors_key, layer=args.layer, key_added=args.cells_key, progress=not args.no_progress
        )


def _batch_correct(args: argparse.Namespace) -> int:
    import numpy as np

    import geneverse as gv

    from ._files import write_h5ad

    output = _input_and_output(args)
    adata = _read(args.input)
    _check_batches(adata, args.batch_key, args.reference)
    _cells_if_missing(adata, args)
    gv.tl.batch_correct(
        adata,
        args.batch_key,
        cells_key=args.cells_key,
        key_added=args.key_added,
        reference=args.reference,
        capture=args.capture,
        layer=args.layer if args.capture else None,
        progress=not args.no_progress,
    )
    write_h5ad(adata, output)  # atomic: the input survives a failed write
    record = gv.get.record(adata, args.key_added)
    print(f"obsm[{args.key_added!r}]: {len(record['batches'])} batches, {record['rounds']} rounds; wrote {output}")
    # a summary on at most 20,000 cells: the file is written whatever it says
    cells = np.random.default_rng(0).permutation(adata.n_obs)[:20_000]
    batches = adata.obs[args.batch_key].to_numpy()[cells]
    try:
        before, after = (
            gv.bench.batch_mixing(adata.obsm[key][cells], batches) for key in (args.cells_key, args.key_added)
        )
    except ValueError as error:
        print(f"(no mixing summary: {error})")
    else:
        print(
            f"cross-batch neighbours {before:.2f} -> {after:.2f} of perfect mixing (over {len(cells)} cells; "
            "types found in one batch cannot mix)"
        )
    return 0


def _annotate(args: argparse.Namespace) -> int:
    import geneverse as gv

    from ._files import write_h5ad

    output = _input_and_output(args)
    if args.markers != "pbmc":
        _input_file(args.markers)
    if not 0.0 <= args.min_probability <= 1.0:
        raise ValueError(f"--min-probability must be in [0, 1], got {args.min_probability}.")
    if args.no_refine and args.method == "vectors":
        raise ValueError("--no-refine is read by --method expression; --method vectors never refines.")
    adata = _read(args.input)
    markers = gv.datasets.pbmc_markers() if args.markers == "pbmc" else args.markers
    if args.method == "vectors":
        _cells_if_missing(adata, args)
        read = {"cells_key": args.cells_key}
    else:  # the expression itself: --layer, or the co-expression's recorded layer
        if args.cells_key != Key.CELL_VECTORS:
            raise ValueError("--cells-key is read by --method vectors; the default method reads the expression.")
        read = {"layer": args.layer, "refine": not args.no_refine}
    gv.tl.annotate(
        adata,
        markers,
        method=args.method,
        vectors_key=args.vectors_key,
        groupby=args.groupby,
        min_probability=args.min_probability,
        key_added=args.key_added,
        progress=not args.no_progress,
        **read,
    )
    write_h5ad(adata, output)  # atomic: the input survives a failed write
    counts = adata.obs[args.key_added].value_counts()
    shown = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
    print(f"obs[{args.key_added!r}]: {shown}; wrote {output}")
    return 0


def _add_cell_options(parser: argparse.ArgumentParser, key_added: str, slot: str) -> None:
    """The input and options of the verbs that work on cell vectors (embedded first when absent)."""
    parser.add_argument("input", help="an .h5ad with gene vectors in varm (from `geneverse embed`)")
    parser.add_argument("--vectors-key", default=Key.GENE_VECTORS, help="varm key of the gene vectors (default X_gv)")
    parser.add_argument(
        "--cells-key", default=Key.CELL_VECTORS, help="obsm key of the cell vectors; made by cell_embed if absent"
    )
    parser.add_argument(
        "--layer", default=None, help="counts layer: for cell_embed when it runs, and read by annotate (e.g. counts)"
    )
    parser.add_argument("--key-added", default=key_added, help=f"{slot} (default {key_added})")
    parser.add_argument("--output", default=None, help="output .h5ad (default: overwrite the input)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_query_options(parser: argparse.ArgumentParser, metavar: str) -> None:
    parser.add_argument("input", help="an .h5ad with gene vectors in varm")
    parser.add_argument("genes", nargs="*", metavar=metavar, help="query gene(s); omit with --interactive")
    parser.add_argument("--n", type=int, default=10, help="number of results (default 10)")
    parser.add_argument("--key", default="X_gv", help="varm key of the vectors (default X_gv)")
    parser.add_argument("--gene-symbols", default=None, help="var column with the gene names to use")
    parser.add_argument("--markdown", default=None, help="also write the result(s) as markdown to this file")
    parser.add_argument("--interactive", action="store_true", help="read one query per line from stdin until EOF")


def _bar_plot(table, path: str, title: str) -> None:
    from matplotlib.figure import Figure

    from ._files import save_figure

    fig = Figure(figsize=(6, 0.35 * len(table) + 1.2))  # no pyplot: no GUI backend needed
    ax = fig.subplots()
    ax.barh(table.iloc[::-1, 0].astype(str), table["similarity"].iloc[::-1], color="tab:blue")
    ax.set_xlabel("cosine similarity")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=150)


def _check_bedspace(args: argparse.Namespace) -> None:
    """Every argument of a bedspace step, checked before any work."""
    needs = {
        "preprocess": ("--universe", "--output"),
        "train": ("--labels", "--output"),
        "distances": ("--output",),
        "search": ("--query",),
    }[args.action]
    given = {"--universe": args.universe, "--output": args.output, "--labels": args.labels, "--query": args.query}
    missing = [option for option in needs if not given[option]]
    if missing:
        raise ValueError(f"bedspace {args.action} needs {' and '.join(missing)}.")
    if args.action == "preprocess":
        if not Path(args.input).is_dir():
            raise FileNotFoundError(f"--input: {args.input} is not a folder of BED files.")
        if not Path(args.universe).is_file():
            raise FileNotFoundError(f"--universe: no such file: {args.universe}")
    else:
        _input_file(args.input, "--input")
    _output(args.output, "--output")
    _output(args.plot, "--plot")
    _positive(args.dim, "--dim")
    _positive(args.epochs, "--epochs")
    _positive(args.n, "-n")
    if not args.lr > 0 or args.lr == float("inf"):
        raise ValueError(f"--lr must be a positive finite number, got {args.lr}.")


def _bedspace(args: argparse.Namespace) -> int:
    import geneverse as gv

    from ._files import write_h5ad, write_table

    _check_bedspace(args)
    if args.action == "preprocess":
        tokens = gv.regions.tokenize(args.input, args.universe, metadata=args.metadata)
        write_h5ad(tokens, args.output)
        report = tokens.uns["gv"]["tokenize"]
        print(
            f"{tokens.n_obs} sets x {tokens.n_vars} universe regions -> {args.output} "
            f"({len(report['empty_sets'])} empty sets, chromosomes missing from the universe: "
            f"{list(report['unknown_chromosomes'])})"
        )
    elif args.action == "train":
        model = _read(args.input)
        gv.regions.train(
            model, args.labels, n_components=args.dim, epochs=args.epochs, lr=args.lr, progress=not args.no_progress
        )
        write_h5ad(model, args.output)
        loss = model.uns["gv"]["X_bedspace"]["loss"]
        print(f"trained {model.n_vars} region and {len(model.uns['gv']['X_bedspace']['labels'])} label vectors; "
              f"loss {loss[0]:.4g} -> {loss[-1]:.4g}; wrote {args.output}")  # fmt: skip
    elif args.action == "distances":
        table = gv.regions.distances(_read(args.input), args.type)
        write_table(table, args.output, sep="\t", float_format="%.6g")
        print(f"wrote the {args.type} cosine similarities ({table.shape[0]} x {table.shape[1]}) to {args.output}")
    else:
        model = _read(args.input)
        table = gv.regions.search(model, args.query, args.type, args.n)
        print(table.to_string(index=False))
        if args.output:
            write_table(table, args.output, sep="\t", index=False)
        if args.plot:
            _bar_plot(table, args.plot, f"{args.type}: {args.query}")
    return 0


def _targets(args: argparse.Namespace) -> int:
    import geneverse as gv

    for name in gv.targets.available_targets():
        target = gv.targets.get_target(name)
        print(f"{name:14s} {'built-in' if target.builtin else 'custom':9s} {target.description}")
    return 0


def _cache(args: argparse.Namespace) -> int:
    import geneverse as gv

    if args.action == "clear":
        print(f"removed {gv.cache.clear()} files (entries and orphaned temporary files) from {gv.cache.cache_dir()}")
    else:
        state = gv.cache.info()
        print(
            f"{state['directory']}: {state['entries']} entries, {state['bytes'] / 1e6:.1f} MB; "
            f"{state['orphans']} orphaned temporary files (older than an hour; `geneverse cache clear` removes them)"
        )
    return 0


def _view(args: argparse.Namespace) -> int:
    try:
        import napari

        from .viewer import view
    except ImportError as error:
        print(f"geneverse: error: napari is not installed ({error}); pip install 'geneverse[napari]'", file=sys.stderr)
        return 2
    view(args.input, library_id=args.library_id, spatial_key=args.spatial_key, mod=args.mod)
    napari.run()
    return 0


def _explore(args: argparse.Namespace) -> int:
    import time

    from .viewer import explore
    from .viewer._server import can_open_browser

    _input_file(args.input)
    server = explore(
        args.input,
        vectors_key=args.key,
        gene_symbols=args.gene_symbols,
        port=args.port,
        host=args.host,
        open_browser=not args.no_browser,
        mod=args.mod,
    )
    where = "" if args.host in ("127.0.0.1", "localhost", "::1") else " (reachable from other machines)"
    print(f"geneverse explore: {server.url}{where}  (Ctrl-C to stop)", flush=True)
    try:
        computing = server.explorer.map() is None
    except ValueError as error:  # no map for this embedding; the page says why, the queries still work
        computing = False
        print(f"geneverse explore: {error}", file=sys.stderr)
    if computing:
        print(
            "geneverse explore: computing the gene map (UMAP) in the background; search works meanwhile "
            "(gv.pl.gene_map stores it in the file, so it opens at once next time).",
            file=sys.stderr,
        )
    if not args.no_browser and not can_open_browser():
        print(
            f"geneverse explore: no display here; open the address in a browser (over SSH, forward the port "
            f"first: ssh -L {server.port}:127.0.0.1:{server.port} this-machine).",
            file=sys.stderr,
        )
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("geneverse explore: stopped.", file=sys.stderr)
    finally:
        server.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="geneverse", description="Gene embeddings from expression data.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="the main job on the bundled pbmc68k data: co-expression, gene vectors, queries; writes tables and plots",
    )
    demo.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    demo.set_defaults(func=_demo)

    co = sub.add_parser("coexpression", help="compute a genes x genes target into an .h5ad file's varp")
    _add_input_options(co, "target name (see `geneverse targets`; default mi)")
    co.add_argument("--key-added", default=None, help="varp key (default gv_<target>)")
    co.add_argument("--n-bins", type=int, default=None, help="mi, genevector_mi: maximum bins per gene (default 10)")
    co.add_argument("--unsigned", action="store_true", help="mi: do not multiply by the sign of the correlation")
    co.add_argument("--mi-backend", default="auto", choices=["auto", "sparse", "torch"], help="mi backend")
    co.add_argument("--output", default=None, help="output .h5ad (default: overwrite the input)")
    co.add_argument("--table", default=None, help="also write the matrix as a .tsv/.csv table")
    co.add_argument("--top", type=int, default=10, help="print this many strongest pairs")
    co.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    co.add_argument("--no-progress", action="store_true", help="hide progress bars")
    co.set_defaults(func=_coexpression)

    embed = sub.add_parser("embed", help="co-expression + gene vectors into an .h5ad file's varm")
    _add_input_options(embed, "co-expression target to learn from (default mi)")
    embed.add_argument("--method", default="genevector", choices=["genevector", "glove"], help="model")
    embed.add_argument("--n-components", type=int, default=50, help="vector dimensions (default 50)")
    embed.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the method's)")
    embed.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    embed.add_argument("--device", default="auto", help="auto, cpu or cuda")
    embed.add_argument("--key-added", default="X_gv", help="varm key (default X_gv)")
    embed.add_argument("--output", default=None, help="output .h5ad (default: overwrite the input)")
    embed.add_argument("--no-progress", action="store_true", help="hide progress bars")
    embed.set_defaults(func=_embed)

    annotate = sub.add_parser("annotate", help="cell types from marker genes into an .h5ad file's obs")
    annotate.add_argument(
        "--markers", required=True, help="marker file (.gmt, .json, .csv, .tsv) or 'pbmc' for the shipped PBMC markers"
    )
    annotate.add_argument("--groupby", default=None, help="obs column to annotate per group (e.g. leiden)")
    annotate.add_argument("--min-probability", type=float, default=0.4, help="below it: unassigned (default 0.4)")
    annotate.add_argument(
        "--method",
        choices=("expression", "vectors"),
        default="expression",
        help="score each cell's expression along the markers' vectors (default), or its cell vector (--cells-key)",
    )
    annotate.add_argument(
        "--no-refine",
        action="store_true",
        help="keep the marker scores (--method expression); default: a classifier self-trained on the expression",
    )
    _add_cell_options(annotate, Key.CELL_TYPE, "obs column")
    annotate.set_defaults(func=_annotate)

    batch = sub.add_parser("batch-correct", help="batch-corrected cell vectors into an .h5ad file's obsm")
    batch.add_argument("--batch-key", required=True, help="obs column of the batches (samples, donors, runs)")
    batch.add_argument("--reference", default=None, help="a batch left in place (the others move onto it)")
    batch.add_argument(
        "--capture",
        action="store_true",
        help="also remove each batch's gene capture factors from the counts and embed the cells again",
    )
    _add_cell_options(batch, Key.CORRECTED, "obsm key")
    batch.set_defaults(func=_batch_correct)

    similar = sub.add_parser("similar", help="genes with the most similar vectors")
    _add_query_options(similar, "GENE")
    similar.add_argument("--metric", default="cosine", choices=["cosine", "dot", "euclidean"], help="similarity")
    similar.set_defaults(func=_similar)

    analogy = sub.add_parser("analogy", help="genes completing A - B + C")
    _add_query_options(analogy, "A B C")
    analogy.add_argument("--method", default="3cosadd", choices=["3cosadd", "3cosmul"], help="analogy objective")
    analogy.set_defaults(func=_analogy)

    pairs = sub.add_parser("pairs", help="gene pairs (x, y) whose difference points like A - B (exact search)")
    _add_query_options(pairs, "A B")
    pairs.set_defaults(func=_pairs)

    bedspace = sub.add_parser(
        "bedspace", help="BEDspace: preprocess | train | distances | search (no StarSpace binary)"
    )
    bedspace.add_argument("action", choices=["preprocess", "train", "distances", "search"], help="step")
    bedspace.add_argument(
        "--input", required=True, help="preprocess: folder of BED files; else: an .h5ad from the previous step"
    )
    bedspace.add_argument("--universe", help="preprocess: universe BED file")
    bedspace.add_argument("--metadata", help="preprocess: CSV/TSV with a file column and label columns")
    bedspace.add_argument("--labels", action="append", help="train: label column (repeat for several)")
    bedspace.add_argument("--output", help="output file (.h5ad for preprocess/train, .tsv for distances/search)")
    bedspace.add_argument("--dim", type=int, default=100, help="train: dimensions (default 100)")
    bedspace.add_argument("--epochs", type=int, default=50, help="train: epochs (default 50)")
    bedspace.add_argument("--lr", type=float, default=0.05, help="train: Adagrad learning rate (default 0.05)")
    bedspace.add_argument("-t", "--type", default="r2l", choices=["r2l", "l2r", "r2r"], help="search/distances kind")
    bedspace.add_argument("-q", "--query", help="search: a BED file, a set name, or a label")
    bedspace.add_argument("-n", type=int, default=10, help="search: number of results (default 10)")
    bedspace.add_argument("--plot", help="search: also write a bar plot PNG")
    bedspace.add_argument("--no-progress", action="store_true", help="hide progress bars")
    bedspace.set_defaults(func=_bedspace)

    targets = sub.add_parser("targets", help="list the registered co-expression targets")
    targets.set_defaults(func=_targets)

    view = sub.add_parser("view", help="open an .h5ad with spatial coordinates in napari, with the program widget")
    view.add_argument("input", help=".h5ad (or .h5mu with --mod) holding obsm['spatial']")
    view.add_argument("--library-id", default=None, help="library of uns['spatial'] whose image to show")
    view.add_argument("--spatial-key", default="spatial", help="obsm key of the coordinates (default spatial)")
    view.add_argument("--mod", default=None, help="modality of an .h5mu file")
    view.set_defaults(func=_view)

    explore = sub.add_parser(
        "explore", help="browse an .h5ad file's gene embeddings in a local web page (search, map, analogies, pairs)"
    )
    explore.add_argument("input", help=".h5ad (or .h5mu with --mod) with gene vectors in varm")
    explore.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    explore.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    explore.add_argument("--no-browser", action="store_true", help="do not open a browser; print the address only")
    explore.add_argument("--key", default=None, help="varm key of the embedding shown first (default X_gv)")
    explore.add_argument("--gene-symbols", default=None, help="var column of the gene names to show and query")
    explore.add_argument("--mod", default=None, help="modality of an .h5mu file")
    explore.set_defaults(func=_explore)

    cache = sub.add_parser("cache", help="show or clear the co-expression cache")
    cache.add_argument("action", choices=["info", "clear"], help="info: where and how many; clear: delete all")
    cache.set_defaults(func=_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, TypeError, OSError) as error:
        # bad arguments and bad files: one line, no traceback (KeyError's str() would add quotes)
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"geneverse: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("geneverse: interrupted; no file was changed by the unfinished step.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
