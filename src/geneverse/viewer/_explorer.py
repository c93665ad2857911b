"""What ``geneverse explore`` answers, without HTTP: gene look-up, queries, programs and the gene map.

:class:`Explorer` holds an AnnData read-only: it never writes to it (the map it computes is kept in
memory). Its queries share their code with the public ones (:func:`geneverse.tl.similar` and
:func:`~geneverse.tl.analogy` through :class:`~geneverse._core._search.SearchIndex`, prepared once per
embedding; :func:`~geneverse.tl.similar_pairs` itself), so the page answers what the CLI and Python
answer. The vectors are read at the first query of each embedding.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from .._core._search import ANALOGY_METHODS, SearchIndex, similar_pairs
from .._data import find_record, gene_names, gene_vectors
from .._keys import Key
from .._utils import DESCRIPTION_COLUMNS, resolve_modality
from ..io._markdown import ENSEMBL_GENE, PROTEIN_ATLAS, escape, to_markdown
from ..pl._maps import LAYOUT_KIND
from ..tl._queries import _table

#: ``var`` columns searched by the completion besides the gene names: Ensembl IDs, then aliases
#: (several per gene, separated by ``,``, ``;`` or ``|``).
ID_COLUMNS = ("gene_ids", "gene_id", "ensembl_id", "ensembl_gene_id", "ensembl")
ALIAS_COLUMNS = ("aliases", "alias", "synonyms", "gene_synonyms")
#: Names that stand for a missing value in a text column, never looked up.
MISSING_NAMES = frozenset({"", "nan", "None", "NaN", "<NA>"})
#: The most results a query may ask for.
MAX_RESULTS = 500


class UnknownGene(KeyError):
    """A gene the file does not hold; ``matches`` are close names."""

    def __init__(self, gene: str, matches: list[str]):
        hint = f" Close matches: {', '.join(matches)}." if matches else ""
        super().__init__(f"Gene {gene!r} is not in this file.{hint}")
        self.matches = matches


@dataclass
class _Names:
    """Every searchable name (lower case, sorted) and the gene row it points to."""

    keys: np.ndarray
    rows: np.ndarray
    kinds: np.ndarray
    shown: np.ndarray = field(repr=False)

    @classmethod
    def build(cls, labels: np.ndarray, var: pd.DataFrame) -> _Names:
        names, rows, kinds = [labels], [np.arange(len(labels))], [np.full(len(labels), "name", dtype=object)]
        for column in ID_COLUMNS:
            if column in var.columns:
                names.append(var[column].astype(str).to_numpy())
                rows.append(np.arange(len(labels)))
                kinds.append(np.full(len(labels), "ensembl", dtype=object))
        for column in ALIAS_COLUMNS:
            if column in var.columns:
                split = var[column].astype(object).fillna("").astype(str).str.split(r"[,;|]")
                lengths = split.str.len().to_numpy()
                flat = np.array([a.strip() for aliases in split for a in aliases], dtype=object)
                names.append(flat)
                rows.append(np.repeat(np.arange(len(labels)), lengths))
                kinds.append(np.full(len(flat), "alias", dtype=object))
        shown = np.concatenate(names).astype(str)
        rows_all, kinds_all = np.concatenate(rows), np.concatenate(kinds)
        keep = ~np.isin(shown, list(MISSING_NAMES))
        shown, rows_all, kinds_all = shown[keep], rows_all[keep], kinds_all[keep]
        keys = np.char.lower(shown.astype(str))
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], rows_all[order], kinds_all[order], shown[order])

    def prefix(self, text: str) -> np.ndarray:
        """Positions of the names starting with ``text`` (case-insensitive), in sorted order."""
        low = text.lower()
        start = np.searchsorted(self.keys, low, side="left")
        stop = np.searchsorted(self.keys, low + "\U0010ffff", side="left")
        return np.arange(start, stop)

    def exact(self, text: str) -> np.ndarray:
        low = text.lower()
        start, stop = np.searchsorted(self.keys, low, "left"), np.searchsorted(self.keys, low, "right")
        return np.arange(start, stop)


def _int(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, got {value!r}.") from None
    if not 1 <= number <= MAX_RESULTS:
        raise ValueError(f"{name} must be between 1 and {MAX_RESULTS}, got {number}.")
    return number


def _with_rows(table: pd.DataFrame, **rows: np.ndarray) -> pd.DataFrame:
    """``table`` with the ``var`` row of each gene column in ``attrs`` (names may repeat; rows do not)."""
    table.attrs["rows"] = {column: [int(r) for r in positions] for column, positions in rows.items()}
    return table


def _records(table: pd.DataFrame) -> list[dict]:
    """Table rows as JSON-ready dicts (floats as Python floats, rounded to 6 decimals)."""
    out = table.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            out[column] = out[column].astype(float).round(6)
    return out.to_dict(orient="records")


class Explorer:
    """Answers the explorer's questions about one AnnData's gene embeddings.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) with gene vectors in ``varm``; never modified.
    vectors_key
        The embedding shown first (default ``X_gv`` if present, else the first embedding found).
    gene_symbols
        ``var`` column of the names to show and query (e.g. symbols when ``var_names`` are IDs).
    mod
        Modality of a MuData.
    map_seed
        Seed of the UMAP layouts computed here.
    """

    def __init__(
        self,
        adata: Any,
        *,
        vectors_key: str | None = None,
        gene_symbols: str | None = None,
        mod: str | None = None,
        map_seed: int = 0,
    ):
        self.adata = resolve_modality(adata, mod)
        self.gene_symbols = gene_symbols
        self.labels = np.asarray(gene_names(self.adata, gene_symbols)).astype(str)
        self.keys = embedding_keys(self.adata)
        if not self.keys:
            raise ValueError(
                "No gene embedding in this file: varm holds no genes x dims vectors. Run `gv.tl.embed(adata)` "
                "(or `geneverse embed FILE`), or import vectors with `gv.io.read_embeddings`."
            )
        if vectors_key is None:
            vectors_key = Key.GENE_VECTORS if Key.GENE_VECTORS in self.keys else self.keys[0]
        self.default_key = self.key(vectors_key)
        self.map_seed = map_seed
        self._names = _Names.build(self.labels, self.adata.var)
        self._row = {}  # the first row of each name, as gene_position finds it (a missing name is none)
        for row, label in enumerate(self.labels):
            if label not in MISSING_NAMES:
                self._row.setdefault(label, row)
        self._indexes: dict[str, SearchIndex] = {}
        self._description = next((self.adata.var[c] for c in DESCRIPTION_COLUMNS if c in self.adata.var), None)
        self._ensembl = next((self.adata.var[c].astype(str) for c in ID_COLUMNS if c in self.adata.var), None)
        self._programs_column = Key.PROGRAMS if Key.PROGRAMS in self.adata.var.columns else None
        self._maps: dict[str, dict] = {}
        self._map_errors: dict[str, str] = {}
        self._map_threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # --- names ----------------------------------------------------------------------------------
    def key(self, key: str | None) -> str:
        """A ``varm`` key of an embedding (``None``: the default one)."""
        if key is None or key == "":
            return self.default_key
        if key not in self.keys:
            raise ValueError(f"key={key!r} is not a gene embedding of this file; use one of {self.keys}.")
        return key

    def resolve(self, gene: str | None, name: str = "gene") -> int:
        """Row of ``gene``: its name (exact, then ignoring case), Ensembl ID or alias."""
        if gene is None or not str(gene).strip():
            raise ValueError(f"{name} is missing: give a gene name, e.g. {name}={self.labels[0]}.")
        gene = str(gene).strip()
        if gene in self._row:
            return self._row[gene]
        hits = self._names.exact(gene)
        if len(hits):  # a name in another case first, then an Ensembl ID, then an alias
            rank = {"name": 0, "ensembl": 1, "alias": 2}
            return int(self._names.rows[min(hits, key=lambda i: (rank[self._names.kinds[i]], i))])
        close = difflib.get_close_matches(gene, self.labels.tolist(), n=5, cutoff=0.6)
        if not close:
            close = [self._names.shown[i] for i in self._names.prefix(gene[:3])[:5]] if len(gene) >= 3 else []
        raise UnknownGene(gene, [str(c) for c in close])

    def genes(self, prefix: str | None, n: Any = None) -> list[dict]:
        """Completion: names, Ensembl IDs and aliases starting with ``prefix`` (gene names first)."""
        n = _int(n, "n", 10)
        prefix = (prefix or "").strip()
        if not prefix:
            return []
        hits = self._names.prefix(prefix)
        if len(hits) == 0:
            return []
        kinds = self._names.kinds[hits]
        # names before IDs and aliases, shorter (closer) names first, each gene once
        rank = np.lexsort((self._names.keys[hits], np.char.str_len(self._names.keys[hits]), kinds != "name"))
        out, seen = [], set()
        for i in hits[rank]:
            row = int(self._names.rows[i])
            if row in seen:
                continue
            seen.add(row)
            out.append({"gene": self.labels[row], "match": str(self._names.shown[i]), "field": self._names.kinds[i]})
            if len(out) == n:
                break
        return out

    @property
    def has_programs(self) -> bool:
        """Whether the genes have programs (``var["gv_program"]`` from :func:`geneverse.tl.programs`)."""
        return self._programs_column is not None

    # --- one gene -------------------------------------------------------------------------------
    def link(self, row: int) -> str:
        """The gene's Human Protein Atlas page (by Ensembl ID when known, else a search for its name)."""
        for candidate in (self._ensembl.iloc[row] if self._ensembl is not None else "", self.adata.var_names[row]):
            match = ENSEMBL_GENE.fullmatch(str(candidate))
            if match:
                return PROTEIN_ATLAS.format(str(candidate).split(".")[0])
        return PROTEIN_ATLAS.format("search/" + quote(str(self.labels[row]), safe=""))

    def description(self, row: int) -> str:
        if self._description is None:
            return ""
        value = self._description.iloc[row]
        return "" if pd.isna(value) else str(value)

    def program(self, row: int) -> str | None:
        if self._programs_column is None:
            return None
        value = self.adata.var[self._programs_column].iloc[row]
        return None if pd.isna(value) else str(value)

    def program_genes(self, program: str | None, n: int = 10) -> list[str]:
        """The program's most central genes, as :func:`geneverse.tl.programs` ordered them."""
        if program is None:
            return []
        record = find_record(self.adata, self._programs_column)
        genes = None if record is None else record.get("programs", {}).get(program)
        if genes is None:
            column = self.adata.var[self._programs_column].astype(str).to_numpy()
            return self.labels[column == program][:n].tolist()
        rows = self.adata.var_names.get_indexer(np.asarray(genes).astype(str)[:n])
        return [self.labels[row] for row in rows if row >= 0]

    def gene(self, gene: str | None) -> dict:
        """A gene's card: name, description, Protein Atlas link, program and its central genes."""
        row = self.resolve(gene)
        program = self.program(row)
        return {
            "gene": str(self.labels[row]),
            "var_name": str(self.adata.var_names[row]),
            "description": self.description(row),
            "link": self.link(row),
            "program": program,
            "program_genes": self.program_genes(program),
            "embeddings": [k for k in self.keys if self.index(k).valid[row]],
        }

    # --- queries --------------------------------------------------------------------------------
    def _annotate(self, table: pd.DataFrame) -> pd.DataFrame:
        for column, position in table.attrs.get("rows", {}).items():
            suffix = column[4:]
            table[f"link{suffix}"] = [self.link(int(r)) for r in position]
            table[f"program{suffix}"] = [self.program(int(r)) for r in position]
        return table

    def index(self, key: str) -> SearchIndex:
        """The unit vectors of ``key``, prepared at the first query (the file is read once)."""
        with self._lock:
            if key not in self._indexes:
                self._indexes[key] = SearchIndex.build(gene_vectors(self.adata, key))
            return self._indexes[key]

    def _rows(self, genes: list[tuple[Any, str]], key: str) -> tuple[SearchIndex, list[int]]:
        rows = [self.resolve(gene, name) for gene, name in genes]
        index = self.index(key)
        for row in rows:
            if not index.valid[row]:
                gene = str(self.labels[row])
                raise ValueError(f"Gene {gene!r} has no usable vector in varm[{key!r}] (NaN or all zeros).")
        return index, rows

    def similar(self, gene: str | None, n: Any = None, key: str | None = None) -> pd.DataFrame:
        """:func:`geneverse.tl.similar`'s table (cosine), from the prepared vectors."""
        key, n = self.key(key), _int(n, "n", 10)
        index, (row,) = self._rows([(gene, "gene")], key)
        best, scores = index.similar(row, n)
        return _with_rows(_table(self.adata, best, scores, self.gene_symbols, None), gene=best)

    def analogy(
        self, a: Any, b: Any, c: Any, n: Any = None, key: str | None = None, method: str | None = None
    ) -> pd.DataFrame:
        """:func:`geneverse.tl.analogy`'s table (``method``: 3cosadd, the default, or 3cosmul), prepared vectors."""
        key, n = self.key(key), _int(n, "n", 10)
        method = method or "3cosadd"
        if method not in ANALOGY_METHODS:
            raise ValueError(f"method={method!r}: use one of {list(ANALOGY_METHODS)}.")
        index, rows = self._rows([(a, "a"), (b, "b"), (c, "c")], key)
        if len(set(rows)) < 3:
            raise ValueError(f"An analogy needs three different genes, got {[str(self.labels[r]) for r in rows]}.")
        best, scores = index.analogy(*rows, n, method)
        return _with_rows(_table(self.adata, best, scores, self.gene_symbols, None, score_name="score"), gene=best)

    def pairs(self, a: Any, b: Any, n: Any = None, key: str | None = None) -> pd.DataFrame:
        """:func:`geneverse.tl.similar_pairs`' table: the exact search over all ordered pairs."""
        key, n = self.key(key), _int(n, "n", 10)
        _, (row_a, row_b) = self._rows([(a, "a"), (b, "b")], key)
        if row_a == row_b:
            raise ValueError(f"Pair search needs two different genes, got {self.labels[row_a]!s} twice.")
        hits = similar_pairs(gene_vectors(self.adata, key), row_a, row_b, n=n)
        table = pd.DataFrame(
            {"gene_x": self.labels[hits.first], "gene_y": self.labels[hits.second], "similarity": hits.scores}
        )
        return _with_rows(table, gene_x=hits.first, gene_y=hits.second)

    def results(self, table: pd.DataFrame) -> list[dict]:
        """A query's table as JSON rows, with each gene's Protein Atlas link and program."""
        return _records(self._annotate(table.copy()))

    def markdown(self, table: pd.DataFrame, title: str) -> str:
        """A query's table as the markdown of :func:`geneverse.io.to_markdown`, under a heading."""
        body = to_markdown(table, self.adata, gene_symbols=self.gene_symbols)
        return f"## {escape(title)}\n\n{body}"

    # --- the gene map ---------------------------------------------------------------------------
    def start_map(self, key: str | None = None) -> None:
        """Read the stored layout, or start computing one in a background thread (once per key)."""
        key = self.key(key)
        with self._lock:
            if key in self._maps or key in self._map_errors or key in self._map_threads:
                return
            stored = self._stored_map(key)
            if stored is not None:
                self._maps[key] = stored
                return
            thread = threading.Thread(target=self._compute_map, args=(key,), daemon=True, name=f"gene map {key}")
            self._map_threads[key] = thread
        thread.start()

    def _stored_map(self, key: str) -> dict | None:
        from ..pl._maps import stored_gene_layout

        found = stored_gene_layout(self.adata, key, gene_vectors(self.adata, key))
        return None if found is None else self._map_payload(*found, source="stored")

    def _compute_map(self, key: str) -> None:
        from .._core._search import valid_rows
        from ..pl._maps import _layout

        try:
            vectors = gene_vectors(self.adata, key)
            rows = np.flatnonzero(valid_rows(vectors))
            if len(rows) < 3:
                raise ValueError(f"varm[{key!r}] has fewer than 3 genes with a vector; nothing to map.")
            payload = self._map_payload(rows, _layout(vectors[rows], "umap", self.map_seed, 15), source="computed")
            with self._lock:
                self._maps[key] = payload
        except Exception as error:  # noqa: BLE001 - the page shows why the map is missing
            with self._lock:
                self._map_errors[key] = f"{type(error).__name__}: {error}"

    def _map_payload(self, rows: np.ndarray, points: np.ndarray, source: str) -> dict:
        column = self.adata.var[self._programs_column].iloc[rows] if self.has_programs else [None] * len(rows)
        programs = [None if pd.isna(p) else str(p) for p in column]
        names = sorted({p for p in programs if p is not None}, key=lambda p: (len(p), p))  # P2 before P10
        index = {name: i for i, name in enumerate(names)}
        return {
            "genes": self.labels[rows].tolist(),
            "x": np.round(points[:, 0].astype(float), 4).tolist(),
            "y": np.round(points[:, 1].astype(float), 4).tolist(),
            "program": [None if p is None else index[p] for p in programs],
            "programs": names,
            "source": source,
        }

    def map(self, key: str | None = None, wait: float | None = None) -> dict | None:
        """The gene map of ``key``: ``None`` while it is being computed (after ``wait`` seconds)."""
        key = self.key(key)
        self.start_map(key)
        thread = self._map_threads.get(key)
        if thread is not None and wait:
            thread.join(wait)
        with self._lock:
            if key in self._map_errors:
                raise ValueError(f"The gene map of {key} could not be computed: {self._map_errors[key]}")
            return self._maps.get(key)


def embedding_keys(adata: Any) -> list[str]:
    """``varm`` keys holding gene vectors (genes x 2+ numbers), stored maps left out."""
    keys = []
    for key, value in adata.varm.items():
        shape = getattr(value, "shape", ())
        dtype = getattr(value, "dtype", None)
        if len(shape) != 2 or shape[1] < 2 or dtype is None or not np.issubdtype(dtype, np.number):
            continue
        record = find_record(adata, key)
        if record is not None and record.get("kind") == LAYOUT_KIND:  # a layout of gv.pl.gene_map
            continue
        keys.append(str(key))
    return keys
