"""The registry of co-expression targets, built-in and user-defined."""

from __future__ import annotations

import dis
import functools
import hashlib
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

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
        Every target's one calling convention: ``func(chunks, gene_names, progress=..., **params)``
        over the cell chunks of the chosen genes, returning the genes x genes matrix. A custom
        ``f(X, gene_names, **kwargs)`` is adapted to it by :meth:`custom` (its matrix in memory).
    builtin
        Shipped with geneverse: its ``target_kwargs`` are checked against ``defaults``, and it
        cannot be replaced or removed.
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
    tool_params
        Arguments of :func:`geneverse.tl.coexpression` that set a parameter of this target when
        ``target_kwargs`` does not (``{"signed_mi": "signed"}`` for ``mi``).
    check
        ``check(values, gene_names)`` run on the result before it is stored (e.g. a warning about
        genes with zero variance).
    check_input
        ``check_input(chunks)`` run on the input before computing, also when the result comes from
        the cache (e.g. a warning that the data look like another data type than the target suits).
    """

    name: str
    func: Callable
    builtin: bool = False
    nonnegative: bool = False
    defaults: dict = field(default_factory=dict)
    value_params: tuple[str, ...] = ()
    description: str = ""
    resolve: Callable | None = None
    tool_params: dict = field(default_factory=dict)
    check: Callable | None = None
    check_input: Callable | None = None
    source: Callable | None = None

    @classmethod
    def custom(cls, name: str, func: Callable, **options: Any) -> Target:
        """A target from the user's ``f(X, gene_names, **kwargs)`` (``source``: ``f`` itself, for the cache key)."""

        def in_memory(chunks: Any, gene_names: list[str], progress: Callable | None = None, **params: Any) -> Any:
            matrix = sp.vstack(list(chunks), format="csr") if chunks.n_chunks > 1 else next(iter(chunks))
            return func(matrix, list(gene_names), **params)

        return cls(name, in_memory, source=func, **options)

    def params(self, target_kwargs: dict | None, **tool_arguments: Any) -> dict[str, Any]:
        """The parameters to compute with: defaults, then the tool's arguments, then ``target_kwargs``.

        Built-ins reject keyword arguments they do not know; a custom target gets exactly ``target_kwargs``.
        """
        given = dict(target_kwargs or {})
        if not self.builtin:
            return given
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            accepted = sorted(self.defaults) or "none"
            raise ValueError(f"Unknown target_kwargs {unknown} for target {self.name!r}; accepted: {accepted}.")
        from_tool = {param: tool_arguments[arg] for arg, param in self.tool_params.items() if arg in tool_arguments}
        return {**self.defaults, **from_tool, **given}

    def compute(self, chunks: Any, gene_names: list[str], params: dict, progress: Callable | None) -> np.ndarray:
        """The genes x genes matrix, whichever convention ``func`` follows (one call site for every target).

        Parameters
        ----------
        chunks
            The expression as a :class:`~geneverse._core._chunks.CellChunks` of the chosen genes.
        gene_names
            Their names.
        params
            From :meth:`params` (and ``resolve``).
        progress
            tqdm-like factory, or ``None``.

        Returns
        -------
        float64 genes x genes matrix, checked (shape, finite).
        """
        values = self.func(chunks, gene_names, progress=progress, **params)
        # a custom target may answer with a sparse matrix or GeneVector's dict of dicts
        return values if self.builtin else as_matrix(values, gene_names, self.name)

    def source_hash(self) -> str | None:
        """Fingerprint of a custom function (part of its cache key), ``None`` when it cannot be taken.

        It covers everything the function's values can depend on that geneverse can see: its source
        code, its default arguments, the values its closure captured, and the module globals it
        reads, followed into the helper functions it calls. Values are hashed by content (numbers,
        strings, containers, numpy arrays, scipy sparse matrices); functions, classes and modules
        of installed packages (numpy, scipy, sklearn ...) by name and package version. When any of
        them is something else (an open file, a model object, a module of your own project, whose
        attributes could change), ``None``: the result is then computed afresh every time and never
        cached, since a stale hit would be silently wrong.
        """
        return fingerprint(self.source or self.func)


class _Unhashable(Exception):
    """A value a custom target depends on has no content hash."""


def fingerprint(value: object) -> str | None:
    """Content hash of a value a custom target depends on (its function, its parameters), or ``None``.

    Parameters
    ----------
    value
        A function, or parameters (numbers, strings, containers, arrays, sparse matrices).

    Returns
    -------
    Hexadecimal digest, or ``None`` when some part cannot be hashed by content.
    """
    digest = hashlib.blake2b(digest_size=16)
    try:
        _fingerprint(value, digest, set())
    except (_Unhashable, RecursionError):
        return None
    return digest.hexdigest()


def _installed_version(module_name: str) -> str | None:
    """``"<package> <version>"`` for a module of the standard library or an installed package, else ``None``."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        return f"{top} {sys.version_info[:3]}"
    module = sys.modules.get(top)
    where = str(getattr(module, "__file__", "") or "")
    if module is None or not any(part in where for part in ("site-packages", "dist-packages")):
        return None  # code of the user's own project: its attributes can change between calls
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            version = metadata.version(top)
        except metadata.PackageNotFoundError:
            version = "unknown"
    return f"{top} {version}"


def _fingerprint(value: object, digest, seen: set[int]) -> None:
    """Feed a content description of ``value`` into ``digest`` (functions followed into their globals)."""
    if value is None or isinstance(value, bool | int | float | complex | str | bytes | np.generic):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
        return
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise _Unhashable
        digest.update(f"ndarray:{value.dtype.str}:{value.shape};".encode())
        digest.update(np.ascontiguousarray(value).tobytes())
        return
    if sp.issparse(value):
        csr = sp.csr_matrix(value)
        digest.update(f"sparse:{csr.dtype.str}:{csr.shape};".encode())
        for part in (csr.indptr, csr.indices, csr.data):
            digest.update(np.ascontiguousarray(part).tobytes())
        return
    if id(value) in seen:  # a container or function met again (recursion): named, not followed
        digest.update(f"again:{type(value).__name__};".encode())
        return
    seen.add(id(value))
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        digest.update(f"{type(value).__name__}[{len(items)}];".encode())
        for item in items:
            _fingerprint(item, digest, seen)
    elif isinstance(value, dict):
        digest.update(f"dict[{len(value)}];".encode())
        for item_key in sorted(value, key=repr):
            _fingerprint(item_key, digest, seen)
            _fingerprint(value[item_key], digest, seen)
    elif isinstance(value, types.ModuleType):
        version = _installed_version(value.__name__)
        if version is None:
            raise _Unhashable
        digest.update(f"module:{value.__name__}:{version};".encode())
    elif isinstance(value, functools.partial):
        digest.update(b"partial;")
        _fingerprint(value.func, digest, seen)
        _fingerprint(value.args, digest, seen)
        _fingerprint(value.keywords, digest, seen)
    elif isinstance(value, types.FunctionType | types.MethodType | type | types.BuiltinFunctionType | np.ufunc):
        _fingerprint_callable(value, digest, seen)
    elif callable(value) and callable(getattr(value, "__wrapped__", None)):  # functools.lru_cache, wraps
        digest.update(b"wrapped;")
        _fingerprint(value.__wrapped__, digest, seen)
    else:
        raise _Unhashable


def _global_names(code: types.CodeType) -> set[str]:
    """Global names ``code`` reads (not attribute names), with those of the code defined inside it."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _global_names(constant)
    return names


def _fingerprint_callable(func, digest, seen: set[int]) -> None:
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__qualname__", getattr(func, "__name__", type(func).__name__))
    version = _installed_version(module) if module else None
    if version is not None:  # numpy, scipy, sklearn ...: their code changes with their version
        digest.update(f"installed:{module}.{name}:{version};".encode())
        return
    if isinstance(func, types.BuiltinFunctionType | np.ufunc):
        raise _Unhashable  # a compiled function of the user's own project
    if isinstance(func, types.MethodType):
        _fingerprint(func.__self__, digest, seen)
        func = func.__func__
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        raise _Unhashable from None
    digest.update(f"code:{module}.{name};".encode())
    digest.update(source.encode())
    if isinstance(func, type):
        return
    _fingerprint(func.__defaults__, digest, seen)
    _fingerprint(func.__kwdefaults__, digest, seen)
    for cell in func.__closure__ or ():
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (a name assigned later)
            contents = None
        _fingerprint(contents, digest, seen)
    module_globals = func.__globals__
    for global_name in sorted(_global_names(func.__code__)):
        if global_name in module_globals:
            digest.update(f"global:{global_name};".encode())
            _fingerprint(module_globals[global_name], digest, seen)


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
        _add(Target.custom(name, func, nonnegative=nonnegative, description=description), overwrite)
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
        return Target.custom(getattr(target, "__name__", "custom"), target)
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
