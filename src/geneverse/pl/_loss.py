"""``gv.pl.loss``: training loss of an embedding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._docs import shared_docs
from .._keys import Key
from .._utils import UNS_KEY, renamed_parameters, resolve_modality
from ._coexpression import _show_or_save

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@renamed_parameters(key="vectors_key")
@shared_docs
def loss(
    adata: Any,
    vectors_key: str = Key.GENE_VECTORS,
    *,
    log: bool = True,
    ax: Any = None,
    show: bool | None = None,
    save: str | Path | None = None,
    mod: str | None = None,
) -> Axes | None:
    """Plot the loss per epoch recorded by :func:`geneverse.tl.embed`.

    Parameters
    ----------
    adata
        AnnData (or MuData with ``mod``) trained with ``gv.tl.embed(..., key_added=key)``.
    vectors_key
        The embedding's key.
    log
        Logarithmic loss axis.
    {doc_plot}
    """
    import matplotlib.pyplot as plt

    record = resolve_modality(adata, mod).uns.get(UNS_KEY, {}).get(vectors_key)
    if record is None or "loss" not in record:
        raise KeyError(
            f"No training record uns['gv'][{vectors_key!r}] with a loss; "
            f"run `gv.tl.embed(adata, key_added={vectors_key!r})`."
        )
    history = np.asarray(record["loss"], dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(np.arange(1, len(history) + 1), history, color="tab:purple")
    if log and (history > 0).all():
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(f"{vectors_key}: {record.get('method', '')} on {record.get('target_key', '')}")
    return _show_or_save(ax, show, save)
