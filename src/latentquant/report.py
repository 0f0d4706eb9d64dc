"""`latentquant report`: one self-contained HTML page per run.

The page holds the config, curves of every logged metric, the NMI heatmap, traversals, reconstructions and
how often each codebook value of each latent is used. Images are embedded as base64 PNG data URIs and the
CSS is inline, with no scripts and no links out, so the file opens offline and survives being mailed.

Everything is read through runs.py and rebuilt the way `latentquant eval` rebuilds it
(train.load_run_model); the report never writes into the run directory except the page itself.
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from . import __version__, runs, viz
from .checkpoint import atomic_write_text, list_checkpoints
from .config import Config
from .data import GroundTruthData
from .errors import UserError
from .evaluate import evaluate, to_input
from .metrics.usage import codebook_usage, usage_entropy_bits
from .models import GAN_MODELS

# The summary's first rows, in this order; any other score of the evaluation (DCI, MIG, ...) follows them.
HEADLINE = {"infom": "InfoM", "infoe": "InfoE", "infoc": "InfoC", "psnr": "PSNR (dB)",
            "active_latents": "active latents"}

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 2em;
     border-bottom: 1px solid #ccc; padding-bottom: 0.2em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.15em 0.7em; text-align: left;
        border-bottom: 1px solid #eee; } th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; } img.pixels { image-rendering: pixelated; }
.note { background: #fff6dd; border-left: 4px solid #e0b000; padding: 0.4em 0.8em; }
.muted { color: #777; } pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 12px; }
"""


class ReportWarning(UserWarning):
    """A part of the report that could not be made (the page says why); the command line prints it."""


# ----------------------------------------------------------------------------------------------------------
# Codebook usage: the counting is metrics/usage.py's; here is the model-facing part.


@dataclass
class LatentUsage:
    """How a model's latents are used on a set of images."""

    kind: Literal["scalar", "vector", "continuous"]
    representations: np.ndarray  # (N, D): what the metrics see (codebook values, VQ codes, VAE means, ...)
    counts: np.ndarray | None = None  # (D, max K): images whose latent j takes codebook index k
    num_values: list[int] | None = None  # codebook size of each latent
    codebooks: list[np.ndarray] | None = None  # scalar quantizers: the values of each latent's codebook


@torch.no_grad()
def encode_images(model, data: GroundTruthData, indices: np.ndarray, *, batch_size: int,
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """(representations (N, D), codebook indices (N, D) or None for continuous latents) of data.images[indices]."""
    reps, codes = [], []
    for start in range(0, len(indices), batch_size):
        out = model.encode(to_input(data.images[indices[start : start + batch_size]], device))
        reps.append(out.representation.float().cpu())
        if out.indices is not None:
            codes.append(out.indices.cpu())
    return torch.cat(reps).numpy(), (torch.cat(codes).numpy() if codes else None)


def latent_usage(model, data: GroundTruthData, indices: np.ndarray, *, batch_size: int = 500,
                 device: torch.device | str = "cpu") -> LatentUsage:
    """Encode data.images[indices] and count the codebook usage of every latent (if the latents are quantized)."""
    was_training = model.training
    model.eval()
    reps, codes = encode_images(model, data, indices, batch_size=batch_size, device=device)
    model.train(was_training)
    latent = model.latent
    if codes is None:
        return LatentUsage("continuous", reps)
    if hasattr(latent, "codebook"):  # scalar quantizers: latent j's index k stands for one number
        sizes = [int(k) for k in latent.num_values]
        books = [latent.codebook(j).detach().float().cpu().numpy() for j in range(len(sizes))]
        return LatentUsage("scalar", reps, codebook_usage(codes, sizes), sizes, books)
    sizes = [int(latent.num_embeddings)] * codes.shape[1]  # VQ: every slot picks from one shared codebook
    return LatentUsage("vector", reps, codebook_usage(codes, sizes), sizes)


# ----------------------------------------------------------------------------------------------------------
# Reading the run.


def load_model(run_dir: Path, cfg: Config, step: int) -> tuple[GroundTruthData, torch.nn.Module]:
    """The run's data and its model with the weights of checkpoint `step`, in eval mode."""
    from . import train  # the training loop's imports (tensorboard, tqdm) only when a model is rebuilt

    data, model, _ = train.load_run_model(Path(run_dir), cfg, step)
    model.eval()
    return data, model


def metric_series(log: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """Every finite numeric metric of metrics.jsonl as {group: {name: (steps, values)}}, groups in page order."""
    groups: dict[str, dict[str, tuple[list[int], list[float]]]] = {
        "Training losses": {}, "Validation losses": {}, "Evaluation metrics": {}, "Throughput": {}}
    for record in log:
        split, step = record.get("split"), record.get("step")
        if not isinstance(step, int):
            continue
        for key, value in record.items():
            if key in ("split", "step") or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                continue
            if split == "train":
                group = "Throughput" if key == "images_per_s" else "Training losses"
            elif split == "eval":
                group = "Validation losses" if key.startswith("val/") else "Evaluation metrics"
            else:
                group = f"{split} metrics"
            steps, values = groups.setdefault(group, {}).setdefault(key, ([], []))
            steps.append(step)
            values.append(float(value))
    return {name: series for name, series in groups.items() if series}


def _latest_eval(run_dir: Path, cfg: Config, log: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """(label, scores) of the final evaluation (with a later `latentquant eval`'s suite), else the latest one."""
    final = runs.final_metrics(run_dir, cfg)
    if final is not None:
        return f"final evaluation (step {final['step']})", final
    evals = [r for r in log if r.get("split") == "eval" and isinstance(r.get("step"), int)]
    if not evals:
        return None
    latest = max(evals, key=lambda r: r["step"])
    return f"latest evaluation (step {latest['step']} of {cfg.train.steps})", latest


# ----------------------------------------------------------------------------------------------------------
# HTML pieces. Every string from the run (config values, metric names, paths) goes through html.escape.


def _e(value: object) -> str:
    return html.escape(str(value))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _img(path: Path, alt: str, pixels: bool = False) -> str:
    """A PNG embedded as a data URI; `pixels`: an image grid, scaled without smoothing when the page is zoomed."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    cls = ' class="pixels"' if pixels else ""
    return f'<img{cls} alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _table(header: list[str] | None, rows: list[list[object]], numeric_from: int = 1) -> str:
    """A table whose columns from `numeric_from` on are right-aligned numbers; no header row if None."""
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>" + "".join(f'<td{" class=num" if i >= numeric_from else ""}>{_e(_fmt(v))}</td>'
                         for i, v in enumerate(row)) + "</tr>"
        for row in rows)
    return f"<table>{head}{body}</table>"


def _summary(run_dir: Path, cfg: Config, log: list[dict[str, Any]], saved: list[int], step: int | None) -> str:
    logged = [r["step"] for r in log if isinstance(r.get("step"), int)]
    done = max([*logged, *saved], default=0)
    facts = [
        ("model", cfg.model.name),
        ("dataset", cfg.data.name + (f" ({cfg.data.path})" if cfg.data.path else " (procedural look-alike)")),
        ("seed", cfg.seed),
        ("latents", cfg.model.num_latents),
        ("steps done / total", f"{done} / {cfg.train.steps}"),
        ("state", runs.run_state(run_dir)),
        ("checkpoints", ", ".join(map(str, saved)) or "none"),
        ("report step", step if step is not None else "none (no checkpoint)"),
        ("run directory", str(run_dir.resolve())),
    ]
    parts = ["<h2>Summary</h2>", _table(None, [list(f) for f in facts], numeric_from=2)]
    latest = _latest_eval(run_dir, cfg, log)
    if latest is None:
        parts.append(_note("No evaluation has been logged yet."))
    else:
        label, scores = latest
        shown = dict(scores)
        if "active_latents" in shown and cfg.model.num_latents:
            shown["active_latents"] = f"{shown['active_latents']} of {cfg.model.num_latents}"
        rows: list[list[object]] = [[name, shown[key]] for key, name in HEADLINE.items() if key in shown]
        rows += [[key, value] for key, value in scores.items()
                 if key not in HEADLINE and key not in ("step", "split") and not key.startswith("val/")]
        parts += [f"<h3>Scores: {_e(label)}</h3>", _table(["metric", "value"], rows)]
    return "\n".join(parts)


def _curves(log: list[dict[str, Any]], tmp: Path) -> str:
    parts = ["<h2>Training curves</h2>"]
    groups = metric_series(log)
    if not groups:
        parts.append(_note("metrics.jsonl holds no records yet."))
    for i, (group, series) in enumerate(groups.items()):
        path = tmp / f"curves_{i}.png"
        viz.save_metric_panels({k: (np.array(s), np.array(v)) for k, (s, v) in series.items()}, path)
        parts += [f"<h3>{_e(group)}</h3>", _img(path, group)]
    return "\n".join(parts)


def _figure(directory: Path | None, name: str, alt: str, missing: str) -> str:
    if directory is not None and (directory / name).is_file():
        return _img(directory / name, alt, pixels=name != "nmi.png")
    return _note(missing)


def _figures(directory: Path | None, caption: str, is_gan: bool, traversable: bool) -> str:
    """NMI heatmap, traversals (GAN: samples and prior traversals) and reconstructions from one evaluation."""
    missing = "not written for this evaluation" if directory is not None else "no evaluation with figures yet"
    cap = f'<p class="muted">{_e(caption)}</p>'
    parts = ["<h2>NMI heatmap</h2>", cap,
             _figure(directory, "nmi.png", "NMI heatmap", missing)]
    if is_gan:
        parts += ["<h2>Samples</h2>", cap, _figure(directory, "samples.png", "samples from the prior", missing),
                  "<h2>Prior traversals</h2>", cap,
                  '<p class="muted">one prior sample; each row sweeps one latent over its codebook (or [0, 1))</p>',
                  _figure(directory, "traversals.png", "prior traversals", missing)]
    else:
        why = missing if traversable else "this latent has no scalar axis to sweep (a VQ slot's code is a vector)"
        parts += ["<h2>Traversals</h2>", cap,
                  '<p class="muted">one encoded image; each row sweeps one latent over its codebook values '
                  "(continuous latents: its range on the evaluation set)</p>",
                  _figure(directory, "traversals.png", "latent traversals", why)]
    parts += ["<h2>Reconstructions</h2>", cap, '<p class="muted">top row: input; bottom row: reconstruction'
              + (" (the generator applied to the critic's latent head)" if is_gan else "") + "</p>",
              _figure(directory, "reconstructions.png", "reconstructions", missing)]
    return "\n".join(parts)


def _usage(usage: LatentUsage, step: int, tmp: Path) -> str:
    n = len(usage.representations)
    parts = ["<h2>Codebook usage</h2>"]
    if usage.kind == "continuous":
        path = tmp / "histograms.png"
        viz.save_histograms(usage.representations, path, title=f"latent values on {n} evaluation images (step {step})")
        parts += [f'<p class="muted">The latents are continuous, so there is no codebook: each histogram shows one '
                  f"latent's values (what the metrics score) over the {n} evaluation images.</p>",
                  _img(path, "latent histograms")]
        return "\n".join(parts)
    assert usage.counts is not None and usage.num_values is not None
    counts, sizes = usage.counts, usage.num_values
    entropy = usage_entropy_bits(counts)
    if usage.kind == "scalar":
        assert usage.codebooks is not None
        width = counts.shape[1]
        freq = np.full(counts.shape, np.nan)
        values = np.full(counts.shape, np.nan)
        for j, k in enumerate(sizes):
            freq[j, :k] = counts[j, :k] / max(n, 1)
            values[j, :k] = usage.codebooks[j][:k]
        path = tmp / "usage.png"
        viz.save_usage_heatmap(freq, path, values=values, title=f"codebook usage on {n} evaluation images "
                               f"(step {step})")
        rows = [[f"z{j}", f"{int((counts[j, :k] > 0).sum())} / {k}", round(float(entropy[j]), 3),
                 round(float(2 ** entropy[j]), 2), " ".join(str(int(c)) for c in counts[j, :k])]
                for j, k in enumerate(sizes)]
        parts += [f'<p class="muted">How often each codebook value of each latent is taken over the {n} evaluation '
                  f"images; every row of counts sums to {n}. Entropy is at most log2 of the codebook size "
                  f"({math.log2(max(width, 1)):.2f} bits for {width} values); perplexity = 2^entropy, the number of "
                  "equally used values it is worth.</p>",
                  _img(path, "codebook usage heatmap"),
                  _table(["latent", "values used", "entropy (bits)", "perplexity", "count per value, in codebook "
                          "order"], rows)]
        return "\n".join(parts)
    pooled = counts.sum(axis=0)
    total_codes = sizes[0] if sizes else 0
    pooled_entropy = float(usage_entropy_bits(pooled))
    path = tmp / "usage.png"
    viz.save_sorted_usage(pooled, path, title=f"{int((pooled > 0).sum())} of {total_codes} codes used "
                          f"(step {step}, {n} images x {len(sizes)} slots)")
    rows = []
    for j in range(len(sizes)):
        top = int(np.argmax(counts[j]))
        rows.append([f"slot {j}", int((counts[j] > 0).sum()), round(float(entropy[j]), 3),
                     round(float(2 ** entropy[j]), 2), f"code {top} ({counts[j, top] / max(n, 1):.0%})"])
    parts += [f'<p class="muted">All {len(sizes)} slots choose from one shared codebook of {total_codes} vectors. '
              f"Pooled over slots and the {n} evaluation images: {int((pooled > 0).sum())} codes used, perplexity "
              f"{2 ** pooled_entropy:.1f} (entropy {pooled_entropy:.2f} of {math.log2(max(total_codes, 1)):.2f} "
              "bits).</p>",
              _img(path, "sorted code usage"),
              _table(["slot", "codes used", "entropy (bits)", "perplexity", "most used"], rows)]
    return "\n".join(parts)


def _page(title: str, body: list[str]) -> str:
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{_e(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n" + "\n".join(body)
            + f'\n<p class="muted">written by latentquant {__version__} report on {stamp}</p>\n</body>\n</html>\n')


# ----------------------------------------------------------------------------------------------------------


def write_report(run_dir: str | Path, out: str | Path | None = None, step: int | None = None) -> Path:
    """Write the HTML report of a run; returns its path (default `<run_dir>/report.html`).

    `step` picks the checkpoint whose model is shown (default: the latest). A run without checkpoints still
    gets a report from its logs and saved figures, with a note that no model was saved yet. Raises UserError
    for a path that is not a run directory or a step without a checkpoint.
    """
    run_dir = Path(run_dir).expanduser()
    if not runs.is_run_dir(run_dir):
        raise UserError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = runs.read_config(run_dir)
    log = runs.read_log(run_dir)
    saved = list_checkpoints(run_dir / "checkpoints")
    if step is not None and step not in saved:
        raise UserError(f"{run_dir} has no checkpoint for step {step}; saved: {', '.join(map(str, saved)) or 'none'}")
    if step is None and saved:
        step = saved[-1]
    out = run_dir / "report.html" if out is None else Path(out).expanduser()
    is_gan = cfg.model.name in GAN_MODELS

    body = [_summary(run_dir, cfg, log, saved, step)]
    with tempfile.TemporaryDirectory(prefix="latentquant-report-") as tmp_name:
        tmp = Path(tmp_name)
        body.append(_curves(log, tmp))
        model = data = None
        why_no_model = "No checkpoint has been saved yet, so the model cannot be rebuilt: the figures below are " \
                       "the latest saved ones and codebook usage is not available."
        if step is not None:
            try:
                data, model = load_model(run_dir, cfg, step)
            except UserError as e:  # e.g. the data file moved: the logs still make a useful report
                why_no_model = f"The model of step {step} could not be rebuilt ({e}); codebook usage is not available."
                warnings.warn(f"report without the model: {e}", ReportWarning, stacklevel=2)
        if model is None or data is None:
            body.append(_note(why_no_model))
            shown = _evaluated_dir(run_dir, step)
            caption = f"from the evaluation at {shown.name.replace('_', ' ')}" if shown else ""
            body.append(_figures(shown, caption, is_gan, traversable=True))
            body += ["<h2>Codebook usage</h2>", _note(why_no_model)]
        else:
            from .train import eval_indices, run_device

            indices = eval_indices(len(data), cfg.data.num_eval, cfg.data.seed)
            device = run_device(cfg)
            shown = run_dir / "eval" / f"step_{step}"
            caption = f"step {step}, from the evaluation written during training"
            if not (shown / "nmi.png").is_file():
                shown = tmp / "eval"
                scores = _evaluate_now(model, data, indices, cfg, step, shown, device, is_gan)
                caption = (f"step {step}, evaluated for this report (it has no saved figures): InfoM "
                           f"{scores['infom']:.3f}, InfoE {scores['infoe']:.3f}, InfoC {scores['infoc']:.3f}, "
                           f"PSNR {scores['psnr']:.2f}")
            body.append(_figures(shown, caption, is_gan, traversable=getattr(model.latent, "traversable", True)))
            usage = latent_usage(model, data, indices, batch_size=cfg.eval.batch_size, device=device)
            body.append(_usage(usage, step, tmp))
    config_text = (run_dir / "config.yaml").read_text()
    body += ["<h2>Config</h2>", f"<pre>{_e(config_text)}</pre>"]
    title = f"{cfg.model.name} on {cfg.data.name}, seed {cfg.seed}: {run_dir.name}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, _page(title, body))
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return out


def _evaluated_dir(run_dir: Path, step: int | None) -> Path | None:
    """eval/step_<step> if it holds figures, else the latest evaluation that does (None if none)."""
    candidates = sorted((p for p in (run_dir / "eval").glob("step_*") if (p / "nmi.png").is_file()
                         and p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
    preferred = [p for p in candidates if step is not None and p.name == f"step_{step}"]
    return (preferred or candidates[-1:] or [None])[0]


def _evaluate_now(model, data: GroundTruthData, indices: np.ndarray, cfg: Config, step: int, out_dir: Path,
                  device: torch.device, is_gan: bool) -> dict[str, float]:
    """The evaluation training would have written at `step` (metrics and figures), into a scratch directory."""
    scores = evaluate(model, data, indices, step=step, out_dir=out_dir, batch_size=cfg.eval.batch_size,
                      device=device, figures=True, traversal_values=cfg.eval.traversal_values)
    if is_gan:  # as gan.py's evaluation: samples and prior traversals come from the generator alone
        from .gan import prior_traversals, sample_images

        viz.save_grid(sample_images(model), out_dir / "samples.png")
        viz.save_grid(prior_traversals(model, cfg.eval.traversal_values), out_dir / "traversals.png")
    return scores
