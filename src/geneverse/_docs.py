"""Shared parameter docstrings, written once and injected into every public function (scanpy's ``_doc_params``).

A docstring names a shared entry with a placeholder on its own line, ``{doc_mod}``, and the
function is decorated with :func:`shared_docs`. Entries are written with the indentation of a
module-level function's docstring (name at 4 spaces, description at 8), so they drop in place.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

#: Placeholder name -> the numpydoc entry it stands for.
DOCS: dict[str, str] = {
    "doc_adata": """adata
        AnnData, or a MuData with ``mod``.""",
    "doc_adata_vectors": """adata
        AnnData (or MuData with ``mod``) with gene vectors in ``varm[vectors_key]``.""",
    "doc_mod": """mod
        Modality of a MuData (e.g. ``"rna"``); leave ``None`` for an AnnData.""",
    "doc_copy": """copy
        Return a modified copy instead of writing into ``adata``.""",
    "doc_layer": """layer
        Layer to read instead of ``X``.""",
    "doc_vectors_key": """vectors_key
        ``varm`` key of the gene vectors (trained by :func:`~geneverse.tl.embed` or imported).""",
    "doc_gene_symbols": """gene_symbols
        ``var`` column holding the names to query and report (e.g. symbols when ``var_names``
        are Ensembl IDs).""",
    "doc_description_key": """description_key
        ``var`` column for a ``description`` column (default: the first of ``description``,
        ``gene_description``, ``full_name`` present).""",
    "doc_chunk_size": """chunk_size
        Cells read at a time; memory grows with the chunk, not with the number of cells.""",
    "doc_device": """device
        ``"auto"`` (CUDA when torch sees a GPU), ``"cpu"`` or ``"cuda"``.""",
    "doc_ax": """ax
        Axes to draw into; a new figure otherwise.""",
    "doc_show": """show
        Show the figure (default: when matplotlib is interactive).""",
    "doc_save": """save
        Write the figure to this path (format from the suffix: PNG, PDF, SVG ...), atomically.""",
}
#: The end of every plot that returns one Axes: its output parameters, ``mod`` and the Returns section.
DOCS["doc_plot"] = "\n    ".join(DOCS[name] for name in ("doc_ax", "doc_show", "doc_save", "doc_mod")) + (
    "\n\n    Returns\n    -------\n    The Axes, or ``None`` when shown."
)

#: The end of every plot that draws several panels into a figure of its own: the list of Axes.
DOCS["doc_panels"] = "\n    ".join(DOCS[name] for name in ("doc_show", "doc_save", "doc_mod")) + (
    "\n\n    Returns\n    -------\n    The list of Axes, or ``None`` when shown."
)

_PLACEHOLDER = re.compile(r"\{(doc_\w+)\}")


def shared_docs(func: F) -> F:
    """Replace the ``{doc_...}`` placeholders of ``func``'s docstring with the shared entries.

    Parameters
    ----------
    func
        A function whose docstring holds placeholders.

    Returns
    -------
    ``func``, its ``__doc__`` filled in.
    """
    doc = func.__doc__ or ""
    unknown = sorted(set(_PLACEHOLDER.findall(doc)) - set(DOCS))
    if unknown:
        raise KeyError(f"{func.__qualname__}: unknown docstring placeholders {unknown}; known: {sorted(DOCS)}.")
    func.__doc__ = _PLACEHOLDER.sub(lambda match: DOCS[match[1]], doc)
    return func
