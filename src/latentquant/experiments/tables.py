"""Result tables from finished runs: mean ± confidence interval per model × dataset, as the paper reports them.

The rules follow the reference's `scripts/tables.py`:

- Per group of runs (by default one model on one dataset, usually several seeds) and metric: the mean, the sample
  standard deviation sd, and the half-width t * sd / sqrt(n) of a Student-t interval, t = t_{(1+confidence)/2, n-1}
  (t = 2.447 for 7 seeds at 95 %). One run gives the mean alone, without an interval.
- With more than one dataset, an aggregate table: per model (only models present on every dataset) the mean over
  datasets of the per-dataset means; its half-width is t * (mean over datasets of the per-dataset standard errors
  sd_d / sqrt(n_d)), with t taken at dof = (total runs over those datasets) - 1 (t = 2.052 for 4 x 7 runs). It has
  an interval only when every dataset has one (n_d >= 2).
- With --time, each run's wall time (its training sessions' `time` records in metrics.jsonl, summed) and its
  milliseconds per training step after each session's first (which compiles) are columns too; a run whose
  records do not cover every step (a killed session leaves none) has no entry there.
- Every score is higher-is-better (the time columns are never bold). Per table and metric the best entry has the
  highest mean, and an entry is bold when its upper bound reaches the best entry's lower bound (their intervals
  overlap); an entry without an interval counts as a zero-width one.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy import stats as scipy_stats

from .. import config as config_mod
from .. import runs
from ..errors import UserError
from ..metrics.protocols import DEFAULT_PROTOCOL

# Column label -> key in runs.final_metrics, in the order the columns appear.
METRICS: dict[str, str] = {
    "InfoM": "infom", "InfoE": "infoe", "InfoC": "infoc", "D": "dci_d", "C": "dci_c", "I": "dci_i", "PSNR": "psnr",
}
# Columns shown only when asked for (--time): the run's cost, where lower is better, so never bold.
TIME_METRICS: dict[str, str] = {"wall (min)": "wall_min", "ms/step": "step_ms"}
LABELS = {key: label for label, key in (METRICS | TIME_METRICS).items()}

# Registry name -> row label, in the reference's row order. qlae_fixed is this project's extra ablation; it sits
# with the other QLAE ablations. Models not listed here follow, under their registry names.
MODEL_NAMES: dict[str, str] = {
    "ae": "AE",
    "beta_vae": "β-VAE",
    "beta_tcvae": "β-TCVAE",
    "bio_ae": "BioAE",
    "qlae": "QLAE (ours)",
    "qlae_global": "QLAE w/ global codebook",
    "qlae_no_wd": "QLAE w/o weight decay",
    "qlae_fixed": "QLAE w/ fixed values",
    "vqvae_wd": "VQ-VAE w/ weight decay",
    "vqvae": "VQ-VAE w/o weight decay",
    "infowgan_gp": "InfoWGAN-GP",
    "qlinfowgan_gp": "QLInfoWGAN-GP (ours)",
    "qlinfowgan_gp_no_wd": "QLInfoWGAN-GP w/o weight decay",
    "tripod": "Tripod",
    "tripod_no_fsq": "Tripod w/o FSQ",
    "tripod_no_klm": "Tripod w/o KLM",
    "tripod_no_nhp": "Tripod w/o NHP",
    "factorqvae": "FactorQVAE",
    "qvae": "QVAE",
    "factor_vae": "FactorVAE",
}

# The reference's dataset order; others follow alphabetically.
DATASET_NAMES: dict[str, str] = {
    "shapes3d": "Shapes3D", "mpi3d": "MPI3D", "falcor3d": "Falcor3D", "isaac3d": "Isaac3D", "dsprites": "dSprites",
}
AGGREGATE = "aggregate"

GROUP_KEYS = ("model.name", "data.name")
# Config keys that may differ between the runs of one group without a warning: the seed (the point of a group),
# where things are written or read, and settings that change only logging, checkpointing, figures or speed.
IGNORED_KEYS = frozenset({
    "seed", "run_dir", "resume", "progress", "data.path", "train.threads", "train.device", "train.compile",
    "train.fused", "train.channels_last", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
    "eval.figures", "eval.suite",
})

MISSING = "–"


@dataclass(frozen=True)
class Stat:
    """One table entry: n values summarized; `sd` and `half_width` are None where they are not defined."""

    n: int
    mean: float
    sd: float | None  # sample standard deviation (None for n = 1 and for aggregate entries)
    half_width: float | None  # None: no interval (a single run)
    se: float | None = None  # standard error sd / sqrt(n), which the aggregate averages

    @property
    def low(self) -> float:
        return self.mean - (self.half_width or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half_width or 0.0)


@dataclass
class Row:
    model: str  # registry name
    extra: tuple[Any, ...]  # values of the --group-by keys
    n: int  # runs in the group (aggregate: over all datasets)
    cells: dict[str, Stat | None]  # metric key -> entry
    best: dict[str, bool] = field(default_factory=dict)  # metric key -> bold


@dataclass
class Table:
    dataset: str  # data.name, or AGGREGATE
    title: str
    extra_keys: list[str]
    metrics: list[str]  # metric keys shown, in column order
    rows: list[Row]
    protocols: list[str] = field(default_factory=list)  # the evaluation protocols of its runs (one, unless mixed)
    step: int | None = None  # every run scored at this step (None: at its last)

    @property
    def protocol_note(self) -> str:
        at = "" if self.step is None else f" Each run scored at step {self.step}."
        if self.step is not None and set(self.metrics) & set(TIME_METRICS.values()):
            at += " Times are of the whole run."
        return f"Evaluation protocol: {', '.join(self.protocols) or DEFAULT_PROTOCOL}.{at}"


@dataclass
class Collection:
    """Finished runs grouped by (model.name, data.name, *group_by values), plus what the user should be told."""

    group_by: list[str]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]]  # key -> final metrics of each run
    skipped: list[Path]  # unfinished runs (with `step`: runs without an evaluation at that step)
    warnings: list[str]
    step: int | None = None  # each run scored at this evaluation step; None: at its last step
    stacks: list[str] = field(default_factory=list)  # each distinct processor and torch the finished runs ran on

    @property
    def notes(self) -> list[str]:
        """Lines for stderr: the skipped runs, then the warnings."""
        lines = []
        if self.skipped:
            s = "s" if len(self.skipped) > 1 else ""
            what = f"unfinished run{s}" if self.step is None else f"run{s} without an evaluation at step {self.step}"
            lines.append(f"note: skipped {len(self.skipped)} {what}: {', '.join(map(str, self.skipped))}")
        if len(self.stacks) > 1:
            # Not an error: seeds are often spread over machines. But the spread then includes the machines'.
            lines.append(f"note: these runs ran on {len(self.stacks)} processor/torch stacks "
                         f"({'; '.join(self.stacks)}); a run's scores also move with the stack's kernels "
                         "(docs/architecture.md, Reproducibility)")
        return lines + [f"warning: {w}" for w in self.warnings]


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def collect_runs(paths: Sequence[str | Path], group_by: Sequence[str] = (), step: int | None = None) -> Collection:
    """Find the runs under `paths`, keep the finished ones and group them; UserError if none is finished.

    With `step`, each run is scored at its evaluation at that step instead of its last (with a constant learning
    rate, what a run of that many steps would have given), and runs without one are skipped."""
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise UserError(f"--step must be a step number >= 0, got {step!r}")
    found = runs.find_runs(list(paths))
    extra = [config_mod.SHORTHANDS.get(k, k) for k in dict.fromkeys(group_by)]
    extra = [k for k in extra if k not in GROUP_KEYS]
    known = config_mod.flatten(config_mod.to_dict(config_mod.Config()))
    for key in extra:
        # A model's own hyperparameters (model.beta, ...) are keys of the runs that have them, not of Config().
        if key not in known and not (key.startswith("model.") and key.count(".") == 1):
            raise UserError(f"--group-by: unknown config key {key!r} (e.g. model.weight_decay, train.steps)")
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    configs: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    skipped: list[Path] = []
    stacks: dict[str, None] = {}
    for run_dir in found:
        try:
            cfg = runs.read_config(run_dir)
        except UserError as e:
            raise UserError(f"{run_dir}: {e}") from None
        run = runs.RunDir(run_dir)
        log = run.read_log()  # once: the scores and the time records are both in it
        final = run.final_metrics(cfg, step, log)
        if final is None:
            skipped.append(run_dir)
            continue
        final = {**final, **(run.time_spent(cfg, log) or {})}
        for session in run.environments(log):
            stacks[", ".join(str(session.get(k, "?")) for k in ("cpu", "cpu_capability", "torch"))] = None
        flat = config_mod.flatten(config_mod.to_dict(cfg))
        key = tuple(_hashable(flat.get(k)) for k in (*GROUP_KEYS, *extra))
        groups.setdefault(key, []).append(final)
        configs.setdefault(key, []).append(flat)
    for key in extra:
        if groups and not any(key in flat for flats in configs.values() for flat in flats):
            raise UserError(f"--group-by: unknown config key {key!r}: no finished run has it "
                            "(e.g. model.weight_decay, train.steps)")
    if not groups and step is not None:
        raise UserError(f"none of the {len(found)} runs found has an evaluation at step {step} "
                        "(eval/step_<N>/ shows which steps each run evaluated)")
    if not groups:
        raise UserError(f"no finished run among the {len(found)} found (a run is finished once it has been "
                        "evaluated at its last step)")
    warnings = [w for key, flats in configs.items() if (w := _mixed(key, flats))]
    return Collection(extra, groups, skipped, warnings, step, list(stacks))


def _mixed(key: tuple[Any, ...], flats: list[dict[str, Any]]) -> str | None:
    """A warning if the runs of one group differ in anything but IGNORED_KEYS: they would be averaged silently."""
    differ = sorted({k for flat in flats[1:] for k in flat.keys() | flats[0].keys()
                     if k not in IGNORED_KEYS and flat.get(k) != flats[0].get(k)})
    if not differ:
        return None
    model, dataset, *extra = key
    where = f"{model} on {dataset}" + "".join(f", {v}" for v in extra)
    return (f"the {len(flats)} runs of {where} differ in {', '.join(differ)}; they are averaged together "
            "(add --group-by KEY to separate them)")


def t_multiplier(dof: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t multiplier, e.g. 2.447 for dof 6 at 95 %."""
    return float(scipy_stats.t.ppf((1.0 + confidence) / 2.0, dof))


def summarize(values: Sequence[float], confidence: float = 0.95) -> Stat | None:
    """Mean ± t * sd / sqrt(n) of the values (None if there are none); one value has no interval."""
    n = len(values)
    if n == 0:
        return None
    mean = math.fsum(values) / n
    if n == 1:
        return Stat(1, mean, None, None)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    se = sd / math.sqrt(n)
    return Stat(n, mean, sd, t_multiplier(n - 1, confidence) * se, se)


def aggregate(per_dataset: Sequence[Stat], confidence: float = 0.95) -> Stat:
    """Mean of the per-dataset means ± t_{N-1} * mean of the per-dataset standard errors, N = total runs.

    No interval unless every dataset has one (a single run has no standard error).
    """
    n = sum(s.n for s in per_dataset)
    mean = math.fsum(s.mean for s in per_dataset) / len(per_dataset)
    ses = [s.se for s in per_dataset if s.se is not None]
    if len(ses) < len(per_dataset):
        return Stat(n, mean, None, None)
    se = math.fsum(ses) / len(ses)
    return Stat(n, mean, None, t_multiplier(n - 1, confidence) * se, se)


def mark_best(entries: Sequence[Stat | None]) -> list[bool]:
    """Bold flags: an entry is bold when its upper bound reaches the lower bound of the entry with the best mean."""
    present = [s for s in entries if s is not None]
    if not present:
        return [False] * len(entries)
    best = max(present, key=lambda s: s.mean)
    return [s is not None and s.high >= best.low for s in entries]


def parse_metrics(names: Sequence[str] | None) -> list[str]:
    """Metric keys from labels or keys in any case (InfoM, infom, D, dci_d); all of them by default."""
    if not names:
        return list(METRICS.values())
    every = METRICS | TIME_METRICS | {"wall": "wall_min"}
    lookup = {**{label.lower(): key for label, key in every.items()}, **{key: key for key in every.values()}}
    chosen = []
    for name in names:
        key = lookup.get(name.strip().lower())
        if key is None:
            raise UserError(f"unknown metric {name!r}; known: {', '.join(METRICS | TIME_METRICS)}")
        chosen.append(key)
    return list(dict.fromkeys(chosen))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _sort_value(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then anything else as text, None last."""
    if _is_number(value):
        return (0, value)
    return (2, "") if value is None else (1, str(value))


def _row_order(row: Row) -> tuple[Any, ...]:
    known = list(MODEL_NAMES)
    rank = known.index(row.model) if row.model in known else len(known)
    return (rank, row.model, *(_sort_value(v) for v in row.extra))


def build_tables(collection: Collection, metrics: Sequence[str] | None = None, confidence: float = 0.95) -> list[Table]:
    """One table per dataset, then the aggregate (more than one dataset); columns without any value are dropped."""
    if not 0.0 < confidence < 1.0:
        raise UserError(f"--confidence must be between 0 and 1, got {confidence}")
    chosen = parse_metrics(metrics)
    by_dataset: dict[str, list[Row]] = {}
    protocols: dict[str, set[str]] = {}
    for (model, dataset, *extra), finals in collection.groups.items():
        protocols.setdefault(dataset, set()).update(str(f.get("protocol", DEFAULT_PROTOCOL)) for f in finals)
        cells = {}
        for key in chosen:
            # A metric some runs lack (DCI needs eval.suite or `latentquant eval`) uses the runs that have it.
            cells[key] = summarize([f[key] for f in finals if _is_number(f.get(key))], confidence)
        by_dataset.setdefault(dataset, []).append(Row(model, tuple(extra), len(finals), cells))
    known = list(DATASET_NAMES)
    datasets = sorted(by_dataset, key=lambda d: (known.index(d) if d in known else len(known), d))
    tables = [_finish(Table(d, DATASET_NAMES.get(d, d), collection.group_by, chosen, by_dataset[d],
                            sorted(protocols[d]), collection.step)) for d in datasets]
    for table in tables:
        if len(table.protocols) > 1:
            collection.warnings.append(f"{table.title}: runs evaluated under different protocols "
                                       f"({', '.join(table.protocols)}) share the table; their numbers are not "
                                       "comparable (`latentquant eval --protocol P` scores a run under one)")
    if len(datasets) > 1:
        rows = _aggregate_rows(tables, chosen, confidence)
        if rows:
            shown = ", ".join(t.title for t in tables)
            every = sorted(set().union(*protocols.values()))
            tables.append(_finish(Table(AGGREGATE, f"Aggregate ({shown})", collection.group_by, chosen, rows, every,
                                        collection.step)))
    if all(not t.metrics for t in tables):
        raise UserError(f"no run has any of {', '.join(LABELS[k] for k in chosen)} (D, C and I need eval.suite=true "
                        "or `latentquant eval` of the last step)")
    return tables


def _aggregate_rows(tables: list[Table], metrics: list[str], confidence: float) -> list[Row]:
    per_key = [{(r.model, r.extra): r for r in t.rows} for t in tables]
    common = set(per_key[0]).intersection(*per_key[1:])
    rows = []
    for model, extra in common:
        members = [rows_of[(model, extra)] for rows_of in per_key]
        cells: dict[str, Stat | None] = {}
        for key in metrics:
            entries = [s for m in members if (s := m.cells[key]) is not None]
            # Averaging over a subset of the datasets would not be the same aggregate, so a gap anywhere is a gap.
            cells[key] = aggregate(entries, confidence) if len(entries) == len(members) else None
        rows.append(Row(model, extra, sum(m.n for m in members), cells))
    return rows


def _finish(table: Table) -> Table:
    """Sort the rows, drop empty columns and mark the bold entries."""
    table.rows.sort(key=_row_order)
    table.metrics = [k for k in table.metrics if any(r.cells[k] is not None for r in table.rows)]
    for key in table.metrics:
        cells = [r.cells[key] for r in table.rows]
        bold = [False] * len(cells) if key in TIME_METRICS.values() else mark_best(cells)
        for row, flag in zip(table.rows, bold, strict=True):
            row.best[key] = flag
    return table


# ---- output ----------------------------------------------------------------------------------------------------


def _format_stat(stat: Stat | None, key: str, row_n: int, pm: str) -> str:
    if stat is None:
        return MISSING
    digits = {"psnr": 2, "wall_min": 1, "step_ms": 1}.get(key, 3)
    text = f"{stat.mean:.{digits}f}"
    if stat.half_width is not None:
        text += f" {pm} {stat.half_width:.{digits}f}"
    if stat.n != row_n:  # fewer runs than the row's n (e.g. DCI computed for some seeds only): say so
        text += f" (n={stat.n})"
    return text


def _extra_text(value: Any) -> str:
    return "–" if value is None else str(list(value) if isinstance(value, tuple) else value)


def to_markdown(tables: Sequence[Table]) -> str:
    blocks = []
    for table in tables:
        labels = ["Model", *table.extra_keys]
        numbers = [*(LABELS[k] for k in table.metrics), "n"]
        align = [":---"] * len(labels) + ["---:"] * len(numbers)  # names left, numbers right
        lines = [f"### {table.title}", "", "| " + " | ".join(labels + numbers) + " |", "|" + "|".join(align) + "|"]
        for row in table.rows:
            cells = [MODEL_NAMES.get(row.model, row.model), *map(_extra_text, row.extra)]
            for key in table.metrics:
                text = _format_stat(row.cells[key], key, row.n, "±")
                cells.append(f"**{text}**" if row.best[key] else text)
            lines.append("| " + " | ".join([*cells, str(row.n)]) + " |")
        lines += ["", table.protocol_note]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; β (the only non-ASCII letter of the model names) becomes $\\beta$."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text).replace("β", r"$\beta$").replace("–", "--")


def to_latex(tables: Sequence[Table]) -> str:
    blocks = []
    for table in tables:
        header = ["Model", *table.extra_keys, *(LABELS[k] for k in table.metrics), "$n$"]
        lines = [f"% {latex_escape(table.title)}. {table.protocol_note} (needs \\usepackage{{booktabs}})",
                 "\\begin{tabular}{" + "l" * (1 + len(table.extra_keys)) + "r" * (len(table.metrics) + 1) + "}",
                 "\\toprule",
                 " & ".join(latex_escape(h) if h != "$n$" else h for h in header) + " \\\\",
                 "\\midrule"]
        for row in table.rows:
            cells = [latex_escape(MODEL_NAMES.get(row.model, row.model)),
                     *(latex_escape(_extra_text(v)) for v in row.extra)]
            for key in table.metrics:
                text = _format_stat(row.cells[key], key, row.n, "$\\pm$")
                text = "--" if text == MISSING else text
                cells.append(f"\\textbf{{{text}}}" if row.best[key] else text)
            lines.append(" & ".join([*cells, str(row.n)]) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def to_csv(tables: Sequence[Table]) -> str:
    """Long format, one line per table entry; identifiers are registry names and metric keys, numbers unrounded.

    Entries without an interval (one run) leave ci_low/ci_high empty; aggregate entries leave sd empty (their interval
    comes from the per-dataset standard errors). Missing entries have no line.
    """
    out = io.StringIO()
    extra_keys = tables[0].extra_keys if tables else []
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dataset", "model", *extra_keys, "metric", "n", "mean", "sd", "ci_low", "ci_high", "best",
                     "protocol"])
    for table in tables:
        for row in table.rows:
            for key in table.metrics:
                stat = row.cells[key]
                if stat is None:
                    continue
                interval = ["", ""] if stat.half_width is None else [stat.low, stat.high]
                writer.writerow([table.dataset, row.model, *map(_extra_text, row.extra), key, stat.n, stat.mean,
                                 "" if stat.sd is None else stat.sd, *interval, str(row.best[key]).lower(),
                                 "+".join(table.protocols)])
    return out.getvalue()


RENDERERS = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv}


def render(tables: Sequence[Table], fmt: str = "markdown") -> str:
    if fmt not in RENDERERS:
        raise UserError(f"unknown format {fmt!r}; known: {', '.join(RENDERERS)}")
    return RENDERERS[fmt](tables)
