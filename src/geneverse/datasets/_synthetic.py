"""Synthetic counts with planted gene programs, cell types, spatial fields and clones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from .._utils import check_positive_int, check_seed

KINDS = ("single_cell", "bulk")
#: Defaults that differ by kind: droplet-like sparse counts, or bulk RNA-seq (GTEx-like levels).
_KIND_DEFAULTS = {
    "single_cell": {"mean_counts": 0.08, "dispersion": 2.0, "level_spread": 0.8},
    "bulk": {"mean_counts": 100.0, "dispersion": 10.0, "level_spread": 2.0},
}


def _cell_types(rng: np.random.Generator, n_cells: int, n_programs: int, rare_programs: int, rare_fraction: float):
    """One type per cell; the last ``rare_programs`` types each take ``rare_fraction`` of the cells."""
    if rare_programs == 0:
        return rng.integers(0, n_programs, size=n_cells)
    common = n_programs - rare_programs
    probabilities = np.full(n_programs, rare_fraction)
    probabilities[:common] = (1.0 - rare_fraction * rare_programs) / common
    return rng.choice(n_programs, size=n_cells, p=probabilities)


def _program_activity(
    rng: np.random.Generator,
    n_cells: int,
    n_programs: int,
    spatial: bool,
    rare_programs: int = 0,
    rare_fraction: float = 0.01,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per-cell activity of each program (cells x programs, in [0, 1]), cell types and coordinates."""
    if spatial:
        coordinates = rng.uniform(0, 100, size=(n_cells, 2))
        centres = rng.uniform(15, 85, size=(n_programs, 2))
        distance2 = ((coordinates[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        activity = np.exp(-distance2 / (2 * 20.0**2))  # smooth fields over the tissue
        cell_type = activity.argmax(axis=1)
        return activity, cell_type, coordinates
    cell_type = _cell_types(rng, n_cells, n_programs, rare_programs, rare_fraction)
    activity = np.full((n_cells, n_programs), 0.05)
    activity[np.arange(n_cells), cell_type] = 1.0
    activity *= rng.uniform(0.7, 1.3, size=activity.shape)
    return activity, cell_type, None


def _neighbor_effect_means(rng: np.random.Generator, coordinates: np.ndarray) -> np.ndarray:
    """Means of a source gene (independent per cell) and a target driven by the source around each cell.

    Neither depends on the cell's size factor, so the two share no within-cell variation at all.
    """
    from scipy.spatial import cKDTree

    source_level = rng.lognormal(0.0, 0.8, size=len(coordinates))
    _, neighbours = cKDTree(coordinates).query(coordinates, k=7)
    around = np.log(source_level[neighbours[:, 1:]]).mean(axis=1)
    around = (around - around.mean()) / around.std()
    source = 4.0 * source_level
    target = 2.0 * np.exp(0.8 * around)
    return np.column_stack([source, target])


#: Tissue side in coordinate units and the hires image's pixels per unit (Visium-style scale factor).
_TISSUE_SIDE = 100.0
_HIRES_SCALEF = 6.0


def _tissue_image(coordinates: np.ndarray, activity: np.ndarray) -> np.ndarray:
    """An H&E-like RGB image (uint8) of the tissue: pink stroma, purple where cells are dense and active.

    Painted from the cells themselves (density and the first program's activity, smoothed), so the
    image lines up with ``obsm['spatial']`` through ``tissue_hires_scalef`` like a Visium image.
    """
    from scipy.ndimage import gaussian_filter

    side = int(_TISSUE_SIDE * _HIRES_SCALEF)
    pixels = np.clip((coordinates * _HIRES_SCALEF).astype(int), 0, side - 1)
    density = np.zeros((side, side))
    stain = np.zeros((side, side))
    np.add.at(density, (pixels[:, 1], pixels[:, 0]), 1.0)  # rows are y, columns x
    np.add.at(stain, (pixels[:, 1], pixels[:, 0]), activity[:, 0])
    sigma = 2.0 * _HIRES_SCALEF
    density = gaussian_filter(density, sigma)
    stain = gaussian_filter(stain, sigma)
    density /= density.max()
    stain /= max(stain.max(), 1e-12)
    stroma = np.array([238.0, 190.0, 214.0])
    nuclei = np.array([92.0, 52.0, 140.0])
    mix = np.clip(0.35 * density + 0.55 * stain, 0.0, 1.0)[..., None]
    return ((1.0 - mix) * stroma + mix * nuclei).astype(np.uint8)


def synthetic(
    n_cells: int = 2000,
    n_genes: int = 500,
    n_programs: int = 5,
    seed: int = 0,
    *,
    kind: str = "single_cell",
    genes_per_program: int | None = None,
    overlap: float = 0.0,
    rare_programs: int = 0,
    rare_fraction: float = 0.01,
    n_batches: int = 1,
    batch_effect: float = 0.5,
    batch_depth: float = 0.0,
    batch_specific_types: int = 0,
    mean_counts: float | None = None,
    fold_change: float = 4.0,
    dispersion: float | None = None,
    spatial: bool = False,
    tissue_image: bool = False,
    neighbor_effect: bool = False,
    n_clones: int = 0,
) -> AnnData:
    """Negative-binomial counts with planted gene programs and the truth stored alongside.

    Each program is a set of genes (disjoint unless ``overlap``). Every cell has an activity in [0, 1] for each program;
    a gene's mean is ``size_factor * base * fold_change ** activity`` for its program's activity
    (background genes have no program). Without ``spatial``, each cell belongs to one cell type
    whose program is active; with ``spatial``, cells sit on a 100 x 100 tissue and each program's
    activity is a smooth Gaussian field around its own centre, the cell type being the strongest
    program. Counts are gamma-Poisson (negative binomial with ``dispersion`` as the shape).
    ``kind="bulk"`` makes bulk RNA-seq-like samples instead (GTEx-like: each sample is one tissue,
    gene levels spread over five orders of magnitude, dense counts, less overdispersion).

    Parameters
    ----------
    n_cells, n_genes
        Matrix size (with ``kind="bulk"``, ``n_cells`` is the number of samples).
    n_programs
        Number of planted programs and cell types (tissues for bulk).
    seed
        Random seed; the same seed gives the same data.
    kind
        ``"single_cell"`` (sparse droplet-like counts) or ``"bulk"`` (dense counts, gene base levels
        log-normal with sigma 2 around ``mean_counts=100``, so the highest reach ~1e5, and
        ``dispersion=10``).
    genes_per_program
        Genes in each program (default: half of the genes are split among the programs).
    overlap
        Fraction of each program's genes that also belong to the next program (P0's to P1, ..., the
        last's to P0); such a gene follows the stronger of its two programs. Marked in
        ``var['second_program']``.
    rare_programs
        The last ``rare_programs`` cell types (and so their programs) are rare: each takes
        ``rare_fraction`` of the cells. Not with ``spatial``.
    rare_fraction
        Share of the cells in each rare type (1% by default; at 3,000 cells that is 30).
    n_batches
        Split the cells at random into this many batches (``obs['batch']``); each batch scales every
        gene by its own factor ``exp(N(0, batch_effect))``, a technical effect across all genes.
    batch_effect
        Standard deviation of the log batch factors.
    batch_depth
        Standard deviation of a log depth factor per batch (sequencing depth differs between batches;
        every gene of a batch's cells is scaled by it). 0: no depth change.
    batch_specific_types
        The first ``batch_specific_types`` cell types each occur in one batch only (type ``t`` in
        batch ``t % n_batches``), as a cell type present in some samples only.
    mean_counts
        Median baseline mean count per gene and cell; sets the sparsity (default 0.08 for single
        cells, about 10% nonzero like droplet data after gene selection; 100 for bulk).
    fold_change
        Expression fold change of a program's genes where the program is fully active.
    dispersion
        Negative-binomial shape (smaller: more overdispersed; default 2 for single cells, 10 for bulk).
    spatial
        Add ``obsm['spatial']`` coordinates with programs varying smoothly over the tissue.
    tissue_image
        With ``spatial``: add an H&E-like tissue image in the squidpy/scanpy Visium layout,
        ``uns['spatial']['synthetic']`` with ``images['hires']`` (600 x 600 RGB) and
        ``scalefactors`` (``tissue_hires_scalef`` maps ``obsm['spatial']`` to its pixels).
    neighbor_effect
        With ``spatial``: plant a cell-to-cell effect between two background genes, a source and a
        target. The source's level is independent noise in each cell; the target rises with the
        source's mean level in the cell's 6 nearest neighbours. Within a cell the two are
        uncorrelated, so only a graph-aware target can find the pair. They are marked in
        ``var['neighbor_effect']`` (``"source"``, ``"target"``) and ``uns['synthetic']``.
    n_clones
        If > 0, add ``obs['clone_id']``: clones nested in cell types (as T-cell clonotypes are).

    Returns
    -------
    AnnData with ``X`` and ``layers['counts']`` (the counts, float32: CSR for single cells, dense
    for bulk), ``var['program']`` (categorical, ``"none"`` for background genes),
    ``var['second_program']`` (``"none"`` unless ``overlap``), ``var['base_mean']``,
    ``obs['cell_type']``, ``obsm['program_activity']`` and, as requested, ``obs['batch']``,
    ``obsm['spatial']`` and ``obs['clone_id']``.
    """
    seed = check_seed(seed)
    for name, value in {"n_cells": n_cells, "n_genes": n_genes, "n_programs": n_programs}.items():
        check_positive_int(name, value)
    per_program = genes_per_program if genes_per_program is not None else max(1, n_genes // (2 * n_programs))
    if per_program * n_programs > n_genes:
        raise ValueError(
            f"{n_programs} programs x {per_program} genes exceed n_genes={n_genes}; lower genes_per_program."
        )
    if kind not in KINDS:
        raise ValueError(f"Unknown kind {kind!r}; use one of {KINDS}.")
    defaults = _KIND_DEFAULTS[kind]
    mean_counts = defaults["mean_counts"] if mean_counts is None else mean_counts
    dispersion = defaults["dispersion"] if dispersion is None else dispersion
    if mean_counts <= 0 or fold_change <= 0 or dispersion <= 0:
        raise ValueError("mean_counts, fold_change and dispersion must be positive.")
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be a fraction in [0, 1], got {overlap!r}.")
    n_batches = check_positive_int("n_batches", n_batches)
    if not np.isfinite(batch_effect) or batch_effect < 0:
        raise ValueError(f"batch_effect must be a non-negative number, got {batch_effect!r}.")
    if not np.isfinite(batch_depth) or batch_depth < 0:
        raise ValueError(f"batch_depth must be a non-negative number, got {batch_depth!r}.")
    if not isinstance(batch_specific_types, int | np.integer) or not 0 <= batch_specific_types < n_programs:
        raise ValueError(
            f"batch_specific_types must be an integer in [0, n_programs - 1], got {batch_specific_types!r}."
        )
    if (batch_depth or batch_specific_types) and n_batches < 2:
        raise ValueError("batch_depth and batch_specific_types need n_batches >= 2.")
    if not isinstance(rare_programs, int | np.integer) or not 0 <= rare_programs < n_programs:
        raise ValueError(f"rare_programs must be an integer in [0, n_programs - 1], got {rare_programs!r}.")
    if rare_programs and (spatial or not 0.0 < rare_fraction * rare_programs < 1.0):
        raise ValueError(
            "rare_programs needs spatial=False and rare_fraction * rare_programs in (0, 1) "
            f"(got rare_fraction={rare_fraction!r})."
        )
    if tissue_image and not spatial:
        raise ValueError("tissue_image needs spatial=True (the image shows where the cells are).")
    rng = np.random.default_rng(seed)
    activity, cell_type, coordinates = _program_activity(
        rng, n_cells, n_programs, spatial, int(rare_programs), float(rare_fraction)
    )

    program_of_gene = np.full(n_genes, -1)
    shuffled = rng.permutation(n_genes)
    for p in range(n_programs):
        program_of_gene[shuffled[p * per_program : (p + 1) * per_program]] = p
    second_of_gene = np.full(n_genes, -1)
    n_shared = round(overlap * per_program)
    if n_shared:
        for p in range(n_programs):
            second_of_gene[shuffled[p * per_program : p * per_program + n_shared]] = (p + 1) % n_programs
    base = mean_counts * rng.lognormal(0.0, defaults["level_spread"], size=n_genes)
    size_factor = rng.lognormal(0.0, 0.3, size=n_cells)

    gene_activity = np.zeros((n_cells, n_genes))
    in_program = program_of_gene >= 0
    gene_activity[:, in_program] = activity[:, program_of_gene[in_program]]
    shared = second_of_gene >= 0
    gene_activity[:, shared] = np.maximum(gene_activity[:, shared], activity[:, second_of_gene[shared]])
    mean = size_factor[:, None] * base[None, :] * fold_change**gene_activity
    batch = None
    if n_batches > 1:
        batch = rng.integers(0, n_batches, size=n_cells)
        for t in range(int(batch_specific_types)):
            batch[cell_type == t] = t % n_batches
        mean *= np.exp(rng.normal(0.0, batch_effect, size=(n_batches, n_genes)))[batch]
        if batch_depth:
            mean *= rng.lognormal(0.0, batch_depth, size=n_batches)[batch, None]
    effect_genes = None
    if neighbor_effect:
        if not spatial:
            raise ValueError("neighbor_effect needs spatial=True (the effect acts between spatial neighbours).")
        background = np.flatnonzero(program_of_gene < 0)
        if len(background) < 2:
            raise ValueError("neighbor_effect needs at least 2 background genes; lower genes_per_program.")
        effect_genes = background[:2]
        mean[:, effect_genes] = _neighbor_effect_means(rng, coordinates)
    counts = rng.poisson(rng.gamma(dispersion, mean / dispersion)).astype(np.float32)
    matrix = counts if kind == "bulk" else sp.csr_matrix(counts)

    program_names = [f"P{p}" for p in range(n_programs)]

    def program_labels(codes: np.ndarray) -> pd.Categorical:  # -1 (no program) is "none"
        return pd.Categorical.from_codes(np.where(codes >= 0, codes, n_programs), [*program_names, "none"])

    var = pd.DataFrame(
        {
            "program": program_labels(program_of_gene),
            "second_program": program_labels(second_of_gene),
            "base_mean": base,
        },
        index=[f"gene{i:05d}" for i in range(n_genes)],
    )
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical.from_codes(cell_type, [f"type{t}" for t in range(n_programs)])},
        index=[f"cell{i:06d}" for i in range(n_cells)],
    )
    if batch is not None:
        obs["batch"] = pd.Categorical.from_codes(batch, [f"batch{b}" for b in range(n_batches)])
    if n_clones > 0:
        clone_of_cell = np.empty(n_cells, dtype=np.int64)
        per_type = max(1, n_clones // n_programs)
        for t in range(n_programs):
            members = np.flatnonzero(cell_type == t)
            clone_of_cell[members] = t * per_type + rng.integers(0, per_type, size=len(members))
        obs["clone_id"] = pd.Categorical([f"clone{c}" for c in clone_of_cell])
    if effect_genes is not None:
        var["neighbor_effect"] = ""
        var.iloc[effect_genes, var.columns.get_loc("neighbor_effect")] = ["source", "target"]
    adata = AnnData(X=matrix, obs=obs, var=var, layers={"counts": matrix.copy()})
    adata.obsm["program_activity"] = activity
    if coordinates is not None:
        adata.obsm["spatial"] = coordinates
    if tissue_image:
        adata.uns["spatial"] = {
            "synthetic": {
                "images": {"hires": _tissue_image(coordinates, activity)},
                "scalefactors": {
                    "tissue_hires_scalef": _HIRES_SCALEF,
                    "spot_diameter_fullres": 1.5,  # leaves the tissue visible between 2,000 cells
                },
            }
        }
    adata.uns["synthetic"] = {
        "seed": int(seed),
        "kind": kind,
        "n_programs": int(n_programs),
        "genes_per_program": int(per_program),
        "mean_counts": float(mean_counts),
        "fold_change": float(fold_change),
        "dispersion": float(dispersion),
        "overlap": float(overlap),
        "rare_programs": int(rare_programs),
        "rare_fraction": float(rare_fraction),
        "n_batches": int(n_batches),
        "batch_effect": float(batch_effect),
        "batch_depth": float(batch_depth),
        "batch_specific_types": int(batch_specific_types),
        "spatial": bool(spatial),
        "neighbor_effect": [] if effect_genes is None else [str(var.index[g]) for g in effect_genes],
        "n_clones": int(n_clones),
    }
    return adata
