"""Gene embedding models in torch, trained full-batch on the whole genes x genes target.

``genevector``: gene vectors ``w_i`` and context vectors ``c_j`` whose dot products reproduce the
scaled target, ``mean over i != j of (w_i . c_j - s^2 t_ij)^2`` (GeneVector's MSE over all
off-diagonal pairs with its scale ``s = c = 100``). ``glove``: GloVe's weighted least squares on the
log co-occurrence, ``sum over x_ij > 0 of f(x_ij) (w_i . c_j + b_i + b~_j - log x_ij)^2`` with
``f(x) = min(1, (x / x_max)^alpha)``, trained with AdaGrad.

Memory is the target itself plus thin genes x dims matrices: above ``DOUBLE_GENES`` genes a
float32 target is read in place (no genes x genes copy, no float64), genevector's residual is never
formed (one GEMM of the target with ``[C, W]`` per epoch gives the loss and both gradients, see
:func:`loss_and_gradients`) and GloVe reads its tiles from the counts. The spectral start is
randomised subspace iteration, a few products of the target with genes x (dims + 10) matrices. A
20,000-gene target thus trains in float32 in its own 1.6 GB, on a laptop CPU or a GPU.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ._chunks import row_blocks


@dataclass
class TrainResult:
    """Vectors and training record of one model."""

    gene_vectors: np.ndarray
    context_vectors: np.ndarray
    loss: np.ndarray  # per epoch
    converged: bool
    seconds: float
    extra: dict = field(default_factory=dict)


def _generator(seed: int, device: str):
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


#: Up to this many genes the target is multiplied in float64 (a copy of at most 512 MB).
DOUBLE_GENES = 8192


class OffDiagonal:
    """``scale^2 * target`` with a zero diagonal, used only through products with thin matrices.

    Every product ``goal @ X`` is ``scale^2 (T X - t_ii x_i)``, a GEMM of genes x genes by genes x k,
    and a symmetric target serves ``goal.T @ Y`` from the same pass. Above ``DOUBLE_GENES`` genes the
    target is held as it is given (a float32 view of the caller's array when it already is one, so
    training makes no genes x genes copy) and products are float32. Up to ``DOUBLE_GENES`` a float64
    copy is cheap and the products are float64: GeneVector's loss and gradients are differences of
    such products that nearly cancel where a low-rank fit explains most of the target (pbmc68k's MI:
    97.6%), and float32 sums there leave the loss noisy at 3e-5, above the stopping rule's 1e-5.
    Products are returned in the target's dtype.
    """

    def __init__(self, target, scale2: float):
        import torch

        if len(target) <= DOUBLE_GENES:
            target = target.double()
        self.target = target
        self.dtype = target.dtype
        self.scale2 = float(scale2)
        self.diagonal = target.diagonal().clone()
        self.symmetric = all(torch.equal(target[rows], target[:, rows].T) for rows in row_blocks(len(target)))
        self.squared_norm = self.scale2**2 * (
            sum(float(torch.sum(target[rows].double() ** 2)) for rows in row_blocks(len(target)))
            - float(torch.sum(self.diagonal.double() ** 2))
        )

    def __len__(self) -> int:
        return len(self.target)

    def _fix(self, product, x):
        return (product - self.diagonal[:, None] * x).mul_(self.scale2)

    def matmul(self, x):
        """``goal @ x``."""
        x = x.to(self.dtype)
        return self._fix(self.target @ x, x)

    def both(self, x, y):
        """``goal @ x`` and ``goal.T @ y`` (one GEMM when the target is symmetric)."""
        import torch

        x, y = x.to(self.dtype), y.to(self.dtype)
        if self.symmetric:
            k = x.shape[1]
            product = self.target @ torch.cat([x, y], dim=1)
            return self._fix(product[:, :k], x), self._fix(product[:, k:], y)
        return self.matmul(x), self._fix(self.target.T @ y, y)


def loss_and_gradients(goal: OffDiagonal, gene, context, n_pairs: int) -> tuple:
    """GeneVector's loss ``|W C^T - G|^2 / n_pairs`` off the diagonal and its gradients, from thin products.

    The residual ``R`` is never formed. With ``g = G C``, ``h = G^T W`` and ``q_i = w_i . c_i``:
    ``R C = W (C^T C) - g - q c``, ``R^T W = C (W^T W) - h - q w`` and
    ``|R|^2 = tr(W^T W C^T C) - 2 sum(W * g) + |G|^2 - sum(q^2)``, its terms summed in float64
    (products in float64 up to ``DOUBLE_GENES`` genes, see :class:`OffDiagonal`).
    """
    import torch

    g, h = goal.both(context, gene)
    w, c = gene.to(goal.dtype), context.to(goal.dtype)
    gram_w, gram_c = w.T @ w, c.T @ c
    q = (w * c).sum(dim=1)
    total = (
        float((gram_w.double() * gram_c.double()).sum())
        - 2 * float((w * g).sum(dtype=torch.float64))
        + goal.squared_norm
        - float((q.double() ** 2).sum())
    )
    grad_gene = (w @ gram_c - g - q[:, None] * c).mul_(2.0 / n_pairs)
    grad_context = (c @ gram_w - h - q[:, None] * w).mul_(2.0 / n_pairs)
    return max(total, 0.0) / n_pairs, grad_gene.to(gene.dtype), grad_context.to(context.dtype)


def _spectral_init(goal: OffDiagonal, n_components: int, seed: int, device: str, rounds: int = 8, warmup: int = 4):
    """Gene and context vectors whose product is the best rank-k fit of ``goal`` off the diagonal.

    The diagonal is unobserved (the model is fitted on pairs i != j), so it is imputed from the
    current low-rank fit and the eigen-decomposition repeated (hard impute). The eigenvectors come
    from seeded randomised subspace iteration (Halko et al. 2011) with 10 extra columns: ``warmup``
    power steps, then one per round, each round a Rayleigh-Ritz step on the current subspace, so the
    whole start costs ``warmup + rounds`` products of the target with a genes x (k + 10) matrix and
    no genes x genes temporary. Negative eigenvalues are kept (``context = gene * sign``).
    """
    import torch

    n = len(goal)
    k = min(n_components, n)
    generator = _generator(seed, device)
    imputed = torch.zeros(n, device=device, dtype=goal.dtype)

    def filled(x):  # (goal with the imputed diagonal) @ x
        return goal.matmul(x) + imputed[:, None] * x

    basis = torch.randn(n, min(n, k + 10), generator=generator, device=device, dtype=torch.float32).to(goal.dtype)
    for _ in range(warmup):
        basis, _ = torch.linalg.qr(filled(basis))
    for _ in range(rounds):
        image = filled(basis)
        small = basis.T @ image
        values, rotation = torch.linalg.eigh((small + small.T) / 2)
        order = torch.argsort(values.abs(), descending=True)[:k]
        values, vectors = values[order], basis @ rotation[:, order]
        imputed = ((vectors**2) * values).sum(dim=1)
        basis, _ = torch.linalg.qr(image)
    root = values.abs().sqrt()
    gene = (vectors * root).float()
    context = (vectors * (root * torch.sign(values))).float()
    if k < n_components:  # more dimensions than genes: pad with zeros
        pad = torch.zeros(n, n_components - k, device=device, dtype=gene.dtype)
        gene, context = torch.cat([gene, pad], 1), torch.cat([context, pad], 1)
    return gene.contiguous(), context.contiguous()


def as_float32_tensor(matrix, device: str):
    """A float32 torch tensor of ``matrix`` on ``device``, sharing memory with a float32 C-ordered array on CPU."""
    import torch

    array = np.asarray(matrix)
    if array.dtype != np.float32 or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array, dtype=np.float32)
    with warnings.catch_warnings():  # a read-only array: the tensor is only ever read
        warnings.filterwarnings("ignore", message=".*not writable.*", category=UserWarning)
        return torch.from_numpy(array).to(device)


def _check_finite(loss: float, lr: float) -> None:
    if not np.isfinite(loss):
        raise ValueError(f"Training diverged (the loss became {loss}); lower lr (now {lr}).")


def _converged(losses: list[float], tol: float | None, patience: int) -> bool:
    """Relative loss change below ``tol`` for ``patience`` consecutive epochs."""
    if tol is None or len(losses) <= patience:
        return False
    recent = np.asarray(losses[-(patience + 1) :])
    previous = np.maximum(np.abs(recent[:-1]), 1e-30)
    return bool(np.all(np.abs(np.diff(recent)) / previous < tol))


def train_genevector(
    target: np.ndarray,
    *,
    n_components: int = 100,
    epochs: int = 1000,
    lr: float = 0.05,
    scale: float = 100.0,
    init: str = "spectral",
    tol: float | None = 1e-5,
    patience: int = 5,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable | None = None,
) -> TrainResult:
    """Fit ``w_i . c_j ~ scale^2 * target_ij`` over all pairs ``i != j`` with full-batch Adam.

    Parameters
    ----------
    target
        Symmetric genes x genes matrix (finite).
    n_components
        Vector dimensions.
    epochs
        Maximum number of full passes (one gradient step each).
    lr
        Adam step size relative to the RMS of the initial vectors (so it does not depend on ``scale``).
    scale
        GeneVector's ``c``: the target is multiplied by ``c^2``.
    init
        ``"spectral"`` (top eigenvectors of the target: starts near the optimum) or ``"uniform"``
        (GeneVector's U(-1, 1)).
    tol, patience
        Stop when the relative loss change stays below ``tol`` for ``patience`` epochs (``None``: never).
    seed
        Seeds the initialisation.
    device
        Torch device.
    progress
        tqdm-like factory for an epoch bar, or ``None``.

    Returns
    -------
    :class:`TrainResult` with the gene and context vectors (``gv.tl.embed`` combines them, by default
    their mean: GeneVector's ``"average"``).
    """
    import torch

    started = time.perf_counter()
    goal = OffDiagonal(as_float32_tensor(target, device), float(scale) ** 2)
    n_genes = len(goal)
    n_pairs = max(n_genes * (n_genes - 1), 1)
    if init == "spectral":
        gene, context = _spectral_init(goal, n_components, seed, device)
    elif init == "uniform":
        generator = _generator(seed, device)
        gene = torch.rand(n_genes, n_components, generator=generator, device=device) * 2 - 1
        context = torch.rand(n_genes, n_components, generator=generator, device=device) * 2 - 1
    else:
        raise ValueError(f"Unknown init {init!r}; use 'spectral' or 'uniform'.")
    step = lr * float(torch.sqrt((gene**2).mean() + (context**2).mean()).clamp_min(1e-12))
    optimizer = torch.optim.Adam([gene, context], lr=step)

    losses: list[float] = []
    best = (float("inf"), gene.clone(), context.clone())
    epochs_iter = range(epochs)
    for _ in progress(epochs_iter, total=epochs) if progress else epochs_iter:
        # Gradients by hand: one GEMM of the target with [C, W] a step, no genes x genes temporary.
        loss, gene.grad, context.grad = loss_and_gradients(goal, gene, context, n_pairs)
        losses.append(loss)
        _check_finite(losses[-1], lr)
        if losses[-1] < best[0]:
            # Adam's steps do not shrink to zero at the optimum: keep the best vectors seen.
            best = (losses[-1], gene.clone(), context.clone())
        optimizer.step()
        if _converged(losses, tol, patience):
            break
    final = loss_and_gradients(goal, gene, context, n_pairs)[0]
    if final > best[0]:
        final, gene, context = best
    gene_np, context_np = gene.detach().cpu().numpy(), context.detach().cpu().numpy()
    return TrainResult(
        gene_vectors=gene_np,
        context_vectors=context_np,
        loss=np.asarray(losses),
        converged=_converged(losses, tol, patience),
        seconds=time.perf_counter() - started,
        extra={"final_loss": final, "step_size": step},
    )


#: Genes up to which GloVe keeps its weights and log counts as two float32 tables (512 MB at 8,192).
TABLE_GENES = 8192


def _glove_block_size(n_genes: int) -> int:
    """Genes per tile: about 16 x 16 tiles per epoch, so every vector gets ~16 AdaGrad updates a pass."""
    return int(np.clip(n_genes // 16, 8, 512))


def train_glove(
    cooccurrence: np.ndarray,
    *,
    n_components: int = 100,
    epochs: int = 50,
    lr: float = 0.05,
    x_max: float = 100.0,
    alpha: float = 0.75,
    init: str = "spectral",
    tol: float | None = None,
    patience: int = 5,
    seed: int = 0,
    device: str = "cpu",
    block_size: int | None = None,
    progress: Callable | None = None,
) -> TrainResult:
    """GloVe on a co-occurrence matrix with AdaGrad over tiles of the matrix (exp2vec's defaults).

    GloVe's reference code and text2vec update the parameters pair by pair, so one of their
    iterations moves each vector once per co-occurring gene. A single full-matrix step per
    iteration would move it once, far too little in 50 iterations; here each iteration sweeps the
    matrix in tiles of ``block_size`` x ``block_size`` genes (in a seeded random gene order), one
    AdaGrad step per tile standing for the tile's per-pair updates: the step is the sum of the
    pairs' gradients and the squared-gradient sums (starting at 1, as in GloVe's code) grow by the
    sum of the pairs' squares, added before the step so that no step overshoots.

    Where a tile's weights are dense (bulk counts: every co-occurrence above ``x_max``, so every
    weight is 1), the summed step of a row's ``k`` pairs is ``k`` steps taken at once, without the
    correction that sequential per-pair updates get from each other; from GloVe's start it overshoots
    and the vectors end up fitting noise (ARI 0.02 on planted bulk programs). ``init="spectral"``
    therefore starts at the solution of the saturated problem, biases at each gene's level ``a_i``
    (the least-squares fit of ``log X_ij ~ a_i + a_j``) and vectors from the top eigenvectors of the
    level-free log counts, and scales each gene's tile step by ``1 / max(1, its weights in the tile)``,
    the mean instead of the sum where a row's weights are dense (sparse rows are unchanged), so the
    training refines that start instead of leaving it. ``init="uniform"`` is GloVe's own start
    with the plain summed steps (exp2vec's recipe, as before).

    Parameters
    ----------
    cooccurrence
        Non-negative genes x genes counts; only positive entries enter the loss.
    n_components
        Vector dimensions (exp2vec: 100).
    epochs
        Passes over the matrix (exp2vec: 50 iterations).
    lr
        AdaGrad learning rate (exp2vec: 0.05).
    x_max, alpha
        Weighting ``f(x) = min(1, (x / x_max)^alpha)`` (exp2vec: 100, GloVe's 0.75).
    init
        ``"spectral"`` (level-free spectral start and damped dense steps, see above) or
        ``"uniform"`` (GloVe's start and steps).
    tol, patience
        Optional early stop on the relative loss change.
    seed
        Seeds the initialisation, GloVe's ``(U(0, 1) - 0.5) / dims``, and the tile order.
    device
        Torch device.
    block_size
        Genes per tile (default: ``n_genes // 16`` within [8, 512]).
    progress
        tqdm-like factory, or ``None``.

    Returns
    -------
    :class:`TrainResult` with the word and context vectors (``gv.tl.embed`` stores their sum by
    default, exp2vec's choice).
    """
    import torch

    started = time.perf_counter()
    counts = as_float32_tensor(cooccurrence, device)  # read in tiles, never copied whole
    n_genes = counts.shape[0]

    def tile(x):
        """Weights and log counts of a tile of counts (zero where a count is not positive)."""
        observed = x > 0
        log_x = torch.where(observed, torch.log(torch.where(observed, x, 1.0)), 0.0)
        return torch.where(observed, torch.clamp((x / x_max) ** alpha, max=1.0), 0.0), log_x, observed

    # per gene: positive entries, their summed log counts and summed weights, and weighted log counts
    sums = torch.zeros(4, n_genes, dtype=torch.float64, device=device)
    for rows in row_blocks(n_genes):
        f, log_x, observed = tile(counts[rows])
        for i, part in enumerate((observed.float(), log_x, f, f * log_x)):
            sums[i, rows] = part.sum(dim=1, dtype=torch.float64)
    if not bool((sums[0] > 0).any()):
        raise ValueError("The co-occurrence matrix has no positive entry; GloVe has nothing to fit.")
    block = block_size or _glove_block_size(n_genes)
    generator = _generator(seed, device)

    def start(*shape):
        return (torch.rand(*shape, generator=generator, device=device) - 0.5) / n_components

    if init not in ("spectral", "uniform"):
        raise ValueError(f"Unknown init {init!r}; use 'spectral' or 'uniform'.")
    damped = init == "spectral"
    word, context = start(n_genes, n_components), start(n_genes, n_components)
    if damped:
        row = (sums[1] / sums[0].clamp_min(1.0)).float()
        level = row - row.mean() / 2  # a_i with log X_ij ~ a_i + a_j
        free = torch.empty_like(counts)  # the one genes x genes temporary, freed after the start
        for rows in row_blocks(n_genes):
            _, log_x, observed = tile(counts[rows])
            free[rows] = torch.where(observed, log_x - level[rows, None] - level[None, :], 0.0)
        goal = OffDiagonal(free, 1.0)
        if not goal.symmetric:
            goal = OffDiagonal((free + free.T) / 2, 1.0)
        word, context = _spectral_init(goal, n_components, seed, device)
        del free, goal
        word_bias, context_bias = level.clone(), level.clone()
    else:
        # Biases start at half of each gene's weighted mean log count (GloVe starts them at noise): a
        # tile's bias gradients all point the same way at first, and from noise they overshoot.
        row_level = (sums[3] / sums[2].clamp_min(1e-12)).float()
        word_bias, context_bias = row_level / 2 + start(n_genes), row_level / 2 + start(n_genes)
    squares = [torch.ones_like(t) for t in (word, context, word_bias, context_bias)]

    def adagrad(param, square, grad, pair_squares) -> None:
        # A tile stands for one AdaGrad update per pair: the step is the sum of the pairs' gradients
        # and the accumulator grows by the sum of their squares (not the square of the sum).
        square += pair_squares
        param -= lr * grad / square.sqrt()

    # Up to TABLE_GENES genes, weights and log counts are computed once (two genes x genes tables,
    # at most 512 MB); above, each tile's are computed from the counts on every pass.
    tables = torch.stack(tile(counts)[:2]) if n_genes <= TABLE_GENES else None
    losses: list[float] = []
    epochs_iter = range(epochs)
    for _ in progress(epochs_iter, total=epochs) if progress else epochs_iter:
        # A seeded random gene order per pass; tiles are gathered in that order.
        order = torch.randperm(n_genes, generator=generator, device=device)
        state = [t[order] for t in (word, context, word_bias, context_bias, *squares)]
        w, c, bw, bc, sw, sc, sbw, sbc = state
        total = 0.0
        for r in range(0, n_genes, block):
            rows = slice(r, r + block)
            slab = counts[order[rows]] if tables is None else tables[:, order[rows]]  # block x genes
            for q in range(0, n_genes, block):
                cols = slice(q, q + block)
                f, log_x = tile(slab[:, order[cols]])[:2] if tables is None else slab[:, :, order[cols]]
                diff = torch.addmm(bw[rows, None] + bc[None, cols] - log_x, w[rows], c[cols].T)
                weighted = f * diff
                total += 0.5 * float((weighted * diff).sum())
                w_rows, c_cols, weighted2 = w[rows].clone(), c[cols], weighted**2
                by_row = by_col = weighted
                if damped:  # a row's step is the mean of its pairs' where its weights in the tile sum above 1
                    by_row = weighted / f.sum(dim=1, keepdim=True).clamp_min(1.0)
                    by_col = weighted / f.sum(dim=0, keepdim=True).clamp_min(1.0)
                adagrad(w[rows], sw[rows], by_row @ c_cols, weighted2 @ c_cols**2)
                adagrad(c[cols], sc[cols], by_col.T @ w_rows, weighted2.T @ w_rows**2)
                adagrad(bw[rows], sbw[rows], by_row.sum(dim=1), weighted2.sum(dim=1))
                adagrad(bc[cols], sbc[cols], by_col.sum(dim=0), weighted2.sum(dim=0))
        for target, value in zip((word, context, word_bias, context_bias, *squares), state, strict=True):
            target[order] = value
        losses.append(total)
        _check_finite(total, lr)
        if _converged(losses, tol, patience):
            break
    word_np, context_np = word.cpu().numpy(), context.cpu().numpy()
    return TrainResult(
        gene_vectors=word_np,
        context_vectors=context_np,
        loss=np.asarray(losses),
        converged=_converged(losses, tol, patience),
        seconds=time.perf_counter() - started,
        extra={"word_bias": word_bias.cpu().numpy(), "context_bias": context_bias.cpu().numpy(), "block_size": block},
    )
