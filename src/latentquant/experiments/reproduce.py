"""`latentquant reproduce`: the paper's grid of models x datasets x seeds as one resumable sweep.

With dataset paths: every paper model on each given dataset at `preset=paper` (200k steps, the paper's
networks, tuned per-dataset values), seven seeds as the reference's tables imply. Without any path: the
same models on the procedural Shapes3D look-alike at the CPU preset, two seeds. Either way the trials are
an ordinary sweep (run it again to continue where it stopped) and the tables are written at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from .sweep import Trial, check_trials, run_sweep

# The rows of the paper's tables (Hsu et al. 2023, Tables 1-2), in its order; tables.py draws them.
PAPER_MODELS = ("ae", "beta_vae", "beta_tcvae", "bio_ae", "qlae", "qlae_global", "qlae_no_wd", "vqvae_wd", "vqvae",
                "infowgan_gp", "qlinfowgan_gp", "qlinfowgan_gp_no_wd")
PAPER_DATASETS = ("shapes3d", "mpi3d", "falcor3d", "isaac3d")
PAPER_SEEDS = 7  # the reference's tables use t at 6 degrees of freedom
LOOKALIKE_SEEDS = 2


def plan(paths: dict[str, str | Path], *, seeds: int | None = None, models: tuple[str, ...] = PAPER_MODELS,
         extra: tuple[str, ...] = ()) -> list[Trial]:
    """The trials: one per model x dataset x seed, named `<dataset>-<model>-seed<k>`.

    `paths` maps dataset names to the user's files; empty means the look-alike grid at the CPU preset.
    Every trial computes the whole metric suite at its last step (DCI for the tables' D, C, I).
    """
    for name, path in paths.items():
        if name not in PAPER_DATASETS:
            raise UserError(f"unknown dataset {name!r}; the paper's are {', '.join(PAPER_DATASETS)}")
        if not Path(path).expanduser().exists():
            raise UserError(f"{name}: no such file or directory: {path}")
    if paths:
        scale = ["preset=paper", "eval.suite=true", "eval.dci_predictor=gbt"]
        grid = [(name, [f"data.path={Path(path).expanduser()}"]) for name, path in paths.items()]
        seeds = seeds or PAPER_SEEDS
    else:
        # The random-forest DCI: gradient boosting would take a third of a CPU-preset run's time.
        scale = ["preset=cpu", "eval.suite=true", "eval.dci_predictor=forest"]
        grid = [("shapes3d", [])]
        seeds = seeds or LOOKALIKE_SEEDS
    if seeds < 1:
        raise UserError("--seeds must be at least 1")
    trials = [Trial(f"{data}-{model}-seed{seed}",
                    (*scale, f"model={model}", f"data={data}", *data_args, f"seed={seed}", *extra))
              for data, data_args in grid for model in models for seed in range(1, seeds + 1)]
    check_trials(trials[::seeds])  # seeds differ only in `seed`: one config per model and dataset says enough
    return trials


def reproduce(out: Path, trials: list[Trial], *, workers: int = 1, threads: int | None = None,
              backend: str = "local", address: str | None = None,
              echo: Callable[[str], None] = print) -> dict[str, str]:
    """Run (or continue) the grid in `out`, then write tables.{md,tex,csv} there from what finished."""
    resume = (Path(out) / "sweep.json").exists()
    states = run_sweep(Path(out), trials, workers=workers, threads=threads, backend=backend, address=address,
                       resume=resume, echo=echo)
    if any(state == "finished" for state in states.values()):
        for path in write_tables(Path(out)):
            echo(f"wrote {path}")
    return states


def write_tables(out: Path) -> list[Path]:
    """tables.md, tables.tex and tables.csv in `out`, from every finished run below it."""
    from ..checkpoint import atomic_write_text
    from . import tables

    built = tables.build_tables(tables.collect_runs([out]))
    written = []
    for fmt, suffix in (("markdown", "md"), ("latex", "tex"), ("csv", "csv")):
        path = out / f"tables.{suffix}"
        atomic_write_text(path, tables.render(built, fmt))
        written.append(path)
    return written
