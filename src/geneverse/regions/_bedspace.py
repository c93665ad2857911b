"""BEDspace in torch: joint embeddings of region sets and their labels (StarSpace ``trainMode 0``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._core._bedspace import bag_operator, train_bedspace
from .._data import write_result
from .._docs import shared_docs
from .._keys import Key
from .._utils import (
    UNS_KEY,
    check_finite_number,
    check_positive_int,
    check_seed,
    progress_bar,
    renamed_parameters,
    resolve_device,
)
from ._tokenize import _check_intervals, overlap_matrix, read_bed

KINDS = ("r2l", "l2r", "r2r")


def _label_examples(sets: AnnData, label_keys: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Label vocabulary ``key:value`` and the (set, label) training pairs, one per set and key."""
    if isinstance(label_keys, str):
        label_keys = [label_keys]
    if not label_keys:
        raise ValueError("label_keys must name at least one obs column with the sets' labels.")
    missing = [k for k in label_keys if k not in sets.obs.columns]
    if missing:
        raise KeyError(f"Label columns {missing} not in obs; columns: {list(sets.obs.columns)}.")
    names: list[str] = []
    set_index, label_index = [], []
    for key in label_keys:
        values = sets.obs[key]
        for value in pd.unique(values.dropna()):
            names.append(f"{key}:{value}")
        position = {n: i for i, n in enumerate(names)}
        for row, value in enumerate(values):
            if pd.notna(value):
                set_index.append(row)
                label_index.append(position[f"{key}:{value}"])
    return names, np.asarray(set_index, dtype=np.int64), np.asarray(label_index, dtype=np.int64)


@renamed_parameters(dim="n_components")
@shared_docs
def train(
    sets: AnnData,
    label_keys: str | Sequence[str],
    *,
    n_components: int = 100,
    epochs: int = 50,
    lr: float = 0.05,
    margin: float = 0.05,
    n_negatives: int = 10,
    batch_size: int = 32,
    seed: int = 0,
    device: str = "auto",
    key_added: str = Key.BEDSPACE,
    progress: bool = True,
    copy: bool = False,
) -> AnnData | None:
    """Train BEDspace: region and label vectors such that a set's mean region vector is near its labels.

    StarSpace ``trainMode 0`` with its defaults where BEDspace uses them: a set is the bag (mean) of
    its regions' vectors, each label has a vector in the same space, similarity is the cosine, and
    the loss is the margin ranking (hinge) loss ``sum_k max(0, margin - cos(set, label) + cos(set,
    negative_k))`` over ``n_negatives`` labels drawn at random among the others; Adagrad; vectors
    start at N(0, 0.001). Each set gives one example per label column. Mini-batches of sets are one
    sparse product each.

    Parameters
    ----------
    sets
        Sets x universe tokens from :func:`tokenize`, labels in ``obs``.
    label_keys
        ``obs`` column(s) holding the labels (e.g. ``["cell_type", "tissue"]``).
    n_components
        Vector dimensions.
    epochs
        Passes over the examples.
    lr
        Adagrad learning rate.
    margin
        Hinge margin.
    n_negatives
        Negative labels per example.
    batch_size
        Examples per step.
    seed
        Seeds initialisation, shuffling and negative draws.
    {doc_device}
    key_added
        ``varm`` (regions), ``obsm`` (sets) and ``uns['gv']`` (labels, parameters, loss) key.
    progress
        Show a progress bar over epochs.
    copy
        Return a modified copy instead of writing into ``sets``.

    Returns
    -------
    ``None`` or the copy. Writes ``varm[key_added]`` (universe regions x dim), ``obsm[key_added]``
    (sets x dim: mean of their regions' vectors) and ``uns['gv'][key_added]`` with ``labels``,
    ``label_vectors`` (labels x dim), ``label_keys``, ``params``, ``loss`` (per epoch), ``seconds``.

    Raises
    ------
    ValueError
        Bad parameters (``lr`` must be finite and positive, ``margin`` finite and non-negative), or
        training diverged (a non-finite loss or vectors: lower ``lr``); nothing is written then.
    TypeError
        ``seed`` is not an integer.
    """
    seed = check_seed(seed)
    for name, value in {
        "n_components": n_components,
        "epochs": epochs,
        "n_negatives": n_negatives,
        "batch_size": batch_size,
    }.items():
        check_positive_int(name, value)
    lr = check_finite_number("lr", lr, positive=True)
    margin = check_finite_number("margin", margin, nonnegative=True)
    labels, set_index, label_index = _label_examples(sets, label_keys)
    tokens = sp.csr_matrix(sets.X)
    has_tokens = np.diff(tokens.indptr) > 0
    usable = has_tokens[set_index]
    set_index, label_index = set_index[usable], label_index[usable]
    if len(labels) < 2 or len(set_index) == 0:
        raise ValueError("Training needs at least 2 labels and one non-empty labelled set.")
    device = resolve_device(device)
    bags = bag_operator(tokens)
    started = time.perf_counter()
    trained = train_bedspace(
        bags, set_index, label_index, len(labels), dim=n_components, epochs=epochs, lr=lr, margin=margin,
        n_negatives=n_negatives, batch_size=batch_size, seed=seed, device=device,
        progress=progress_bar(progress, "bedspace"),
    )  # fmt: skip
    region_np, label_np, losses = trained.regions, trained.labels, trained.loss
    set_np = np.asarray(bags @ region_np, dtype=np.float32)

    record = {
        "kind": "bedspace",
        "labels": np.asarray(labels, dtype=object),
        "label_vectors": label_np,
        "label_keys": list(label_keys) if not isinstance(label_keys, str) else [label_keys],
        "params": {
            "n_components": n_components,
            "epochs": epochs,
            "lr": lr,
            "margin": margin,
            "n_negatives": n_negatives,
            "batch_size": batch_size,
            "seed": seed,
        },
        "loss": np.asarray(losses),
        "device": device,
    }
    slots = {"varm": {key_added: region_np}, "obsm": {key_added: set_np}}
    return write_result(sets, key_added, record, copy=copy, started=started, **slots)


def _record(model: AnnData, key: str) -> dict:
    record = model.uns.get(UNS_KEY, {}).get(key)
    if record is None or key not in model.varm:
        raise KeyError(
            f"No BEDspace model under key {key!r}; run `gv.regions.train(sets, label_keys, key_added={key!r})`."
        )
    return record


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms > 0, norms, 1.0)


def _query_vector(model: AnnData, query: Any, key: str) -> tuple[np.ndarray, str | None]:
    """A query region set as a vector: a set of the model (by name), a BED path, or a DataFrame."""
    if isinstance(query, str) and query in model.obs_names:
        return model.obsm[key][model.obs_names.get_loc(query)], query
    if isinstance(query, str | Path):
        if not Path(query).exists():
            raise KeyError(f"{query!r} is neither a set of the model nor a BED file.")
        frame = read_bed(query)
    elif isinstance(query, pd.DataFrame):
        frame = _check_intervals(query, "query")
    else:
        raise TypeError("A region-set query is a set name, a BED path or a DataFrame (chrom, start, end).")
    universe = model.var[["chrom", "start", "end"]].reset_index(drop=True)
    hits = np.flatnonzero(np.asarray(overlap_matrix(frame, universe).sum(axis=0)).ravel() > 0)
    if len(hits) == 0:
        raise ValueError("The query regions overlap no region of the model's universe.")
    return np.asarray(model.varm[key])[hits].mean(axis=0), None


def _label_position(labels: list[str], query: str) -> int:
    if query in labels:
        return labels.index(query)
    matches = [i for i, label in enumerate(labels) if label.split(":", 1)[-1] == str(query)]
    if len(matches) == 1:
        return matches[0]
    raise KeyError(f"Unknown label {query!r}; labels: {labels[:20]}.")


def search(model: AnnData, query: Any, kind: str = "r2l", n: int = 10, *, key: str = Key.BEDSPACE) -> pd.DataFrame:
    """Rank labels for a region set (``r2l``), sets for a label (``l2r``) or sets for a set (``r2r``) by cosine.

    Parameters
    ----------
    model
        Sets trained with :func:`train`.
    query
        ``r2l``/``r2r``: a set of the model (by name), a BED path or a DataFrame of regions
        (mapped onto the model's universe; its vector is the mean of the overlapped regions');
        ``l2r``: a label (``key:value``, or the value when unambiguous).
    kind
        ``"r2l"``, ``"l2r"`` or ``"r2r"``.
    n
        Number of results.
    key
        The model's key.

    Returns
    -------
    DataFrame with ``label`` or ``set`` and ``similarity``, best first (``r2r`` excludes the query set).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown search kind {kind!r}; use one of {KINDS}.")
    n = check_positive_int("n", n)
    record = _record(model, key)
    labels = [str(x) for x in record["labels"]]
    label_vectors = _unit(np.asarray(record["label_vectors"], dtype=np.float64))
    set_vectors = _unit(np.asarray(model.obsm[key], dtype=np.float64))
    if kind == "l2r":
        scores = set_vectors @ label_vectors[_label_position(labels, query)]
        names, column, exclude = list(model.obs_names), "set", None
    else:
        vector, own = _query_vector(model, query, key)
        vector = _unit(np.asarray(vector, dtype=np.float64))
        if kind == "r2l":
            scores, names, column, exclude = label_vectors @ vector, labels, "label", None
        else:
            scores, names, column, exclude = set_vectors @ vector, list(model.obs_names), "set", own
    order = [i for i in np.argsort(-scores, kind="stable") if names[i] != exclude][:n]
    return pd.DataFrame({column: [names[i] for i in order], "similarity": scores[order]})


def distances(model: AnnData, kind: str = "r2l", *, key: str = Key.BEDSPACE) -> pd.DataFrame:
    """Full cosine similarity matrices: sets x labels (``r2l``), labels x sets (``l2r``) or sets x sets (``r2r``).

    Parameters
    ----------
    model
        Sets trained with :func:`train`.
    kind
        ``"r2l"``, ``"l2r"`` or ``"r2r"``.
    key
        The model's key.

    Returns
    -------
    DataFrame of cosine similarities (geniml names these files distances; higher is closer).
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}; use one of {KINDS}.")
    record = _record(model, key)
    labels = [str(x) for x in record["labels"]]
    label_vectors = _unit(np.asarray(record["label_vectors"], dtype=np.float64))
    set_vectors = _unit(np.asarray(model.obsm[key], dtype=np.float64))
    if kind == "r2l":
        return pd.DataFrame(set_vectors @ label_vectors.T, index=model.obs_names, columns=labels)
    if kind == "l2r":
        return pd.DataFrame(label_vectors @ set_vectors.T, index=labels, columns=model.obs_names)
    return pd.DataFrame(set_vectors @ set_vectors.T, index=model.obs_names, columns=model.obs_names)
