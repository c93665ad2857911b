"""The registry of co-expression targets, built-in and user-defined."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Target:
    """A co-expression target.

    Attributes
    ----------
    name
        Registry name, the ``target=`` value.
    func
        Built-in: ``func(chunks, progress=..., **params)`` streaming over cell chunks.
        Custom: ``func(X, gene_names, **kwargs)`` on the in-memory matrix of the chosen genes,
        returning a genes x genes array or GeneVector's ``dict[str, dict[str, float]]``.
    builtin
        Which of the two calling conventions ``func`` follows.
    nonnegative
        Whether the target needs non-negative input (counts or normalised expression).
    defaults
        Accepted ``target_kwargs`` with their default values (built-ins).
    value_params
        The parameters that change the values (the cache key); the others only change speed.
    description
        One line for listings.
    resolve
        Built-ins that need more of the AnnData than its matrix: ``resolve(adata, params)``
        returns the parameters to compute with (e.g. an ``obsp`` key replaced by the graph).
    """

    name: str
    func: Callable
    builtin: bool = False
    nonnegative: bool = False
    defaults: dict = field(default_factory=dict)
    value_params: tuple[str, ...] = ()
    description: str = ""
    resolve: Callable | None = None

    def source_hash(self) -> str | None:
        """Hash of a custom function's source code (part of its cache key), ``None`` if unavailable."""
        try:
            source = inspect.getsource(self.func)
        except (OSError, TypeError):
            return None
        return hashlib.blake2b(source.encode(), digest_size=12).hexdigest()


_REGISTRY: dict[str, Target] = {}


def _add(target: Target, overwrite: bool) -> None:
    existing = _REGISTRY.get(target.name)
    if existing is not None and not overwrite:
        kind = "a built-in" if existing.builtin else "an existing"
        raise ValueError(f"{target.name!r} is {kind} target; pick another name or pass overwrite=True.")
    if existing is not None and existing.builtin:
        raise ValueError(f"{target.name!r} is a built-in target and cannot be replaced; pick another name.")
    _REGISTRY[target.name] = target


def register_target(
    name: str, *, nonnegative: bool = False, description: str = "", overwrite: bool = False
) -> Callable[[Callable], Callable]:
    """Register a custom co-expression target under ``name``.

    Use as a decorator on ``f(X, gene_names, **kwargs)``, where ``X`` is the cells x genes matrix
    of the chosen genes (scipy CSR, float64) and ``gene_names`` their names. ``f`` returns a
    genes x genes array (or sparse matrix) or GeneVector's ``dict[gene][gene] -> float`` form
    (missing pairs are 0). Then ``gv.tl.coexpression(adata, target=name, target_kwargs=...)``.

    Parameters
    ----------
    name
        The name to pass as ``target=``.
    nonnegative
        Reject input with negative values before calling ``f``.
    description
        One line shown by :func:`available_targets`.
    overwrite
        Replace a custom target already registered under ``name``.

    Returns
    -------
    The decorator, which returns ``f`` unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> import geneverse as gv
    >>> @gv.targets.register_target("abs_pearson", overwrite=True)
    ... def abs_pearson(X, gene_names):
    ...     return np.abs(np.corrcoef(X.toarray().T))
    """
    if not isinstance(name, str) or not name:
        raise ValueError("A target name must be a non-empty string.")

    def decorator(func: Callable) -> Callable:
        if not callable(func):
            raise TypeError(f"register_target expects a function, got {type(func).__name__}.")
        _add(Target(name, func, nonnegative=nonnegative, description=description), overwrite)
        return func

    return decorator


def register_builtin(target: Target) -> None:
    """Add a built-in target (used by :mod:`geneverse.targets._builtin`)."""
    _add(target, overwrite=False)


def unregister_target(name: str) -> None:
    """Remove a custom target.

    Parameters
    ----------
    name
        A name registered with :func:`register_target`.
    """
    target = get_target(name)
    if target.builtin:
        raise ValueError(f"{name!r} is a built-in target and cannot be removed.")
    del _REGISTRY[name]


def get_target(target: str | Callable) -> Target:
    """The :class:`Target` for a registered name, or a one-off one wrapping a callable.

    Parameters
    ----------
    target
        A registered name, or a function ``f(X, gene_names, **kwargs)``.

    Returns
    -------
    The target's specification.
    """
    if callable(target) and not isinstance(target, str):
        return Target(getattr(target, "__name__", "custom"), target)
    if target not in _REGISTRY:
        raise KeyError(
            f"Unknown target {target!r}. Available: {available_targets()}; "
            "register a new one with @gv.targets.register_target(name) or pass a callable."
        )
    return _REGISTRY[target]


def available_targets() -> list[str]:
    """Names of all registered targets, built-in first."""
    return sorted(_REGISTRY, key=lambda n: (not _REGISTRY[n].builtin, n))


def as_matrix(result: object, gene_names: list[str], target_name: str) -> np.ndarray:
    """Turn a custom target's output (array, sparse or dict of dicts) into a checked float64 matrix."""
    n = len(gene_names)
    if isinstance(result, dict):
        position = {g: i for i, g in enumerate(gene_names)}
        matrix = np.zeros((n, n))
        unknown = set()
        for gene_a, row in result.items():
            if gene_a not in position:
                unknown.add(gene_a)
                continue
            for gene_b, value in row.items():
                if gene_b in position:
                    matrix[position[gene_a], position[gene_b]] = value
                else:
                    unknown.add(gene_b)
        if unknown:
            raise ValueError(
                f"Target {target_name!r} returned scores for genes not in the selection, e.g. "
                f"{sorted(map(str, unknown))[:5]}; return scores keyed by the gene names it was given."
            )
    elif sp.issparse(result):
        matrix = result.toarray().astype(np.float64)
    else:
        matrix = np.asarray(result, dtype=np.float64)
    if matrix.shape != (n, n):
        raise ValueError(f"Target {target_name!r} returned shape {matrix.shape}; expected ({n}, {n}) genes x genes.")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"Target {target_name!r} returned NaN or infinite values; return finite scores.")
    return matrix
