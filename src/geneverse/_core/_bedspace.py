"""BEDspace's model in torch, on arrays: StarSpace ``trainMode 0`` over bags of regions and their labels.

A set is the mean of its regions' vectors (a row-normalised sparse "bag" operator); each label has
a vector in the same space; similarity is the cosine; the loss is the margin ranking (hinge) loss
``sum_k max(0, margin - cos(set, label) + cos(set, negative_k))`` over negatives drawn uniformly
among the other labels; Adagrad; vectors start at N(0, 0.001).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class BedspaceResult:
    """Trained region and label vectors, and the mean loss per epoch."""

    regions: np.ndarray
    labels: np.ndarray
    loss: np.ndarray


def bag_operator(tokens: sp.csr_matrix) -> sp.csr_matrix:
    """Rows normalised to sum 1: a set's vector is the mean of its regions' vectors."""
    counts = np.asarray(tokens.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.where(counts > 0, counts, 1.0)) @ tokens)


def torch_sparse(matrix: sp.csr_matrix, device: str):
    """A scipy sparse matrix as a torch sparse COO tensor (float32) on ``device``."""
    import torch

    coo = matrix.tocoo()
    index = torch.as_tensor(np.vstack([coo.row, coo.col]).astype(np.int64), device=device)
    values = torch.as_tensor(coo.data, dtype=torch.float32, device=device)
    return torch.sparse_coo_tensor(index, values, coo.shape, check_invariants=False)


def _check_diverged(loss: float, lr: float) -> None:
    if not np.isfinite(loss):
        raise ValueError(
            f"BEDspace training diverged (the loss or the vectors became {loss}); "
            f"use a smaller lr (now {lr:g}; the default is 0.05)."
        )


def train_bedspace(
    bags: sp.csr_matrix,
    set_index: np.ndarray,
    label_index: np.ndarray,
    n_labels: int,
    *,
    dim: int,
    epochs: int,
    lr: float,
    margin: float,
    n_negatives: int,
    batch_size: int,
    seed: int,
    device: str,
    progress: Callable | None = None,
) -> BedspaceResult:
    """Train region and label vectors on ``(set, label)`` examples.

    Parameters
    ----------
    bags
        Sets x regions bag operator (:func:`bag_operator`).
    set_index, label_index
        One training example per pair: the set's row in ``bags`` and the label's index.
    n_labels
        Number of labels (at least 2).
    dim, epochs, lr, margin, n_negatives, batch_size, seed, device, progress
        As :func:`geneverse.regions.train` takes them (``dim`` is its ``n_components``; ``device`` a
        resolved torch device; ``progress`` a tqdm-like factory or ``None``); shuffling and negative
        draws follow ``seed``, and each batch is one sparse product.

    Returns
    -------
    The vectors (float32 numpy) and the loss per epoch.

    Raises
    ------
    ValueError
        The loss or the vectors became non-finite (training diverged).
    """
    import torch

    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    regions = (torch.randn(bags.shape[1], dim, generator=generator) * 1e-3).to(device).requires_grad_(True)
    label_vectors = (torch.randn(n_labels, dim, generator=generator) * 1e-3).to(device).requires_grad_(True)
    optimizer = torch.optim.Adagrad([regions, label_vectors], lr=lr)
    losses = []
    epochs_iter = range(epochs)
    for _ in progress(epochs_iter, total=epochs) if progress else epochs_iter:
        order = torch.randperm(len(set_index), generator=generator).numpy()
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            bag = torch_sparse(bags[set_index[batch]], device)
            lhs = torch.nn.functional.normalize(torch.sparse.mm(bag, regions), dim=1)
            positive = torch.as_tensor(label_index[batch], device=device)
            # negatives uniform over the other labels: draw from n_labels - 1 and skip the positive
            draws = torch.randint(0, n_labels - 1, (len(batch), n_negatives), generator=generator).to(device)
            negative = draws + (draws >= positive[:, None]).long()
            rhs = torch.nn.functional.normalize(label_vectors, dim=1)
            pos_sim = (lhs * rhs[positive]).sum(dim=1, keepdim=True)
            neg_sim = torch.einsum("bd,bkd->bk", lhs, rhs[negative])
            loss = torch.clamp(margin - pos_sim + neg_sim, min=0).sum()
            value = float(loss.detach())
            _check_diverged(value, lr)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += value
        losses.append(total / len(order))
    region_np = regions.detach().cpu().numpy().astype(np.float32)
    label_np = label_vectors.detach().cpu().numpy().astype(np.float32)
    if not (np.isfinite(region_np).all() and np.isfinite(label_np).all()):
        _check_diverged(float("nan"), lr)
    return BedspaceResult(region_np, label_np, np.asarray(losses))
