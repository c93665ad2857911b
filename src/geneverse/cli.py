"""The ``geneverse`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    run_demo(args.out, progress=not args.no_progress, use_cache=not args.no_cache)
    return 0


def _coexpression(args: argparse.Namespace) -> int:
    import anndata as ad

    import geneverse as gv

    adata = ad.read_h5ad(args.input)
    genes = args.genes
    if genes is not None and "," in genes:
        genes = [g.strip() for g in genes.split(",") if g.strip()]
    kwargs = {"n_bins": args.n_bins} if args.target == "mi" and args.n_bins is not None else None
    gv.tl.coexpression(
        adata,
        args.target,
        layer=args.layer,
        genes=genes,
        key_added=args.key_added,
        target_kwargs=kwargs,
        signed_mi=not args.unsigned,
        mi_backend=args.mi_backend,
        use_cache=not args.no_cache,
        progress=not args.no_progress,
    )
    key = args.key_added or f"gv_{args.target}"
    output = args.output or args.input
    adata.write_h5ad(output)
    print(f"wrote varp[{key!r}] to {output}")
    if args.table:
        gv.io.write_coexpression(adata, args.table, key)
        print(f"wrote the genes x genes table to {args.table}")
    print(gv.io.top_pairs(adata, key, n=args.top).to_string(index=False))
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
        print(f"removed {gv.cache.clear()} entries from {gv.cache.cache_dir()}")
    else:
        print(f"{gv.cache.cache_dir()}: {len(gv.cache.entries())} entries")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="geneverse", description="Gene embeddings from expression data.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="co-expression on the bundled pbmc68k data; writes tables and a plot")
    demo.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    demo.set_defaults(func=_demo)

    co = sub.add_parser("coexpression", help="compute a genes x genes target into an .h5ad file's varp")
    co.add_argument("input", help="input .h5ad")
    co.add_argument("--target", default="mi", help="target name (see `geneverse targets`; default mi)")
    co.add_argument("--layer", default=None, help="layer to use instead of X")
    co.add_argument("--genes", default=None, help="boolean var column (e.g. highly_variable) or comma-separated genes")
    co.add_argument("--key-added", default=None, help="varp key (default gv_<target>)")
    co.add_argument("--n-bins", type=int, default=None, help="mi: maximum bins per gene (default 10)")
    co.add_argument("--unsigned", action="store_true", help="mi: do not multiply by the sign of the correlation")
    co.add_argument("--mi-backend", default="auto", choices=["auto", "sparse", "torch"], help="mi backend")
    co.add_argument("--output", default=None, help="output .h5ad (default: overwrite the input)")
    co.add_argument("--table", default=None, help="also write the matrix as a .tsv/.csv table")
    co.add_argument("--top", type=int, default=10, help="print this many strongest pairs")
    co.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    co.add_argument("--no-progress", action="store_true", help="hide progress bars")
    co.set_defaults(func=_coexpression)

    targets = sub.add_parser("targets", help="list the registered co-expression targets")
    targets.set_defaults(func=_targets)

    cache = sub.add_parser("cache", help="show or clear the co-expression cache")
    cache.add_argument("action", choices=["info", "clear"], help="info: where and how many; clear: delete all")
    cache.set_defaults(func=_cache)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"geneverse: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
