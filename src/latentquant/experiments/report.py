"""`latentquant report`: one self-contained HTML page per run.

The page holds the config, curves of every logged metric, the NMI heatmap, traversals, reconstructions and
how often each codebook value of each latent is used. Images are embedded as base64 PNG data URIs and the
CSS is inline, with no scripts and no links out, so the file opens offline and survives being mailed.

Everything is read through runs.RunDir and rebuilt the way `latentquant eval` rebuilds it
(evaluate.load_run_model); the report never writes into the run directory except the page itself, and it
embeds only regular files inside the run directory (a planted symlink is not followed).
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
import warnings
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, viz
from ..config import Config
from ..data import GroundTruthData
from ..errors import UserError
from ..evaluate import LatentUsage, data_split, evaluate, latent_usage, load_run_model
from ..fsio import atomic_write_text, read_regular
from ..metrics.usage import usage_entropy_bits
from ..models import LatentModel
from ..runs import RunDir, minutes_and_seconds

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
# Reading the run.


def metric_series(log: list[dict[str, Any]]) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """Every finite numeric metric of metrics.jsonl as {group: {name: (steps, values)}}, groups in page order."""
    groups: dict[str, dict[str, tuple[list[int], list[float]]]] = {
        "Training losses": {}, "Validation losses": {}, "Evaluation metrics": {}, "Throughput": {}}
    for record in log:
        split, step = record.get("split"), record.get("step")
        if not isinstance(step, int) or split == "time":  # one record per session: a table's, not a curve's
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


def _latest_eval(run: RunDir, cfg: Config, log: list[dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    """(label, scores) of the final evaluation (with a later `latentquant eval`'s suite), else the latest one."""
    final = run.final_metrics(cfg)
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


def _img(path: Path, alt: str, pixels: bool = False, root: Path | None = None) -> str:
    """A PNG embedded as a data URI; `pixels`: an image grid, scaled without smoothing when the page is zoomed.

    A file of the run (`root`) is read only if it is a regular file inside it: never through a planted link."""
    raw = read_regular(Path(path), root) if root is not None else Path(path).read_bytes()
    data = base64.b64encode(raw).decode("ascii")
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


def _summary(run: RunDir, cfg: Config, log: list[dict[str, Any]], saved: list[int], step: int | None) -> str:
    run_dir = run.path
    logged = [r["step"] for r in log if isinstance(r.get("step"), int)]
    done = max([*logged, *saved], default=0)
    facts = [
        ("model", cfg.model.name),
        ("dataset", cfg.data.name + (f" ({cfg.data.path})" if cfg.data.path else " (procedural look-alike)")),
        ("seed", cfg.seed),
        ("latents", cfg.model.num_latents),
        ("steps done / total", f"{done} / {cfg.train.steps}"),
        ("state", run.state()),
        ("checkpoints", ", ".join(map(str, saved)) or "none"),
        ("report step", step if step is not None else "none (no checkpoint)"),
        ("wall time", _wall_time(run, cfg, log)),
        ("ran on", _stacks(run, log)),
        ("run directory", str(run_dir.resolve())),
    ]
    parts = ["<h2>Summary</h2>", _table(None, [list(f) for f in facts], numeric_from=2)]
    latest = _latest_eval(run, cfg, log)
    if latest is None:
        parts.append(_note("No evaluation has been logged yet."))
    else:
        label, scores = latest
        shown = dict(scores)
        if "active_latents" in shown and cfg.model.num_latents:
            shown["active_latents"] = f"{shown['active_latents']} of {cfg.model.num_latents}"
        rows: list[list[object]] = [[name, shown[key]] for key, name in HEADLINE.items() if key in shown]
        rows += [[key, value] for key, value in scores.items()
                 if key not in HEADLINE and key not in ("step", "split", "protocol", "supervised")
                 and not key.startswith("val/")]
        protocol = scores.get("protocol", cfg.eval.protocol)
        parts += [f"<h3>Scores: {_e(label)}</h3>", _note(f"Evaluation protocol: {protocol}.")]
        if "supervised" in scores:
            parts.append(_note(f"The data has {scores['supervised']}; the unsupervised scores are shown instead."))
        parts.append(_table(["metric", "value"], rows))
    return "\n".join(parts)


def _stacks(run: RunDir, log: list[dict[str, Any]]) -> str:
    """Each distinct stack the sessions ran on, from the step it started: a run that moved is marked."""
    seen: list[tuple[int, str]] = []
    keys = ("cpu", "cpu_capability", "device", "torch", "latentquant")
    for record in run.environments(log):
        text = ", ".join(f"{key} {record.get(key, '?')}" for key in keys)
        if not seen or seen[-1][1] != text:
            seen.append((record.get("step", 0), text))
    if not seen:
        return "not recorded (a run written before latentquant recorded it)"
    if len(seen) == 1:
        return seen[0][1]
    return "; ".join(f"from step {step}: {text}" for step, text in seen) + " (its last bits changed with the stack)"


def _wall_time(run: RunDir, cfg: Config, log: list[dict[str, Any]]) -> str:
    spent = run.time_spent(cfg, log)
    if spent is None:
        return "unknown (not finished, or a session was killed before it could record its time)"
    per_step = f", {spent['step_ms']:.1f} ms per training step" if math.isfinite(spent["step_ms"]) else ""
    return minutes_and_seconds(spent["wall_min"] * 60) + per_step


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


def _figure(directory: Path | None, name: str, alt: str, missing: str, root: Path) -> str:
    path = None if directory is None else directory / name
    if path is not None and path.is_file() and not path.is_symlink():
        try:
            return _img(path, alt, pixels=name != "nmi.png", root=root)
        except UserError as e:
            return _note(f"not shown: {e}")
    return _note(missing)


def _figures(directory: Path | None, caption: str, root: Path, labelled: bool = True) -> str:
    """NMI heatmap, samples (a model with a prior), traversals and reconstructions from one evaluation."""
    missing = "not written for this evaluation" if directory is not None else "no evaluation with figures yet"
    cap = f'<p class="muted">{_e(caption)}</p>'
    nmi = (_figure(directory, "nmi.png", "NMI heatmap", missing, root) if labelled
           else _note("The data has no factor labels, so there is no NMI between latents and factors to show."))
    parts = ["<h2>NMI heatmap</h2>", cap, nmi]
    if directory is not None and (directory / "samples.png").is_file():
        parts += ["<h2>Samples</h2>", cap, '<p class="muted">16 draws from the prior</p>',
                  _figure(directory, "samples.png", "samples from the prior", missing, root)]
    parts += ["<h2>Traversals</h2>", cap,
              '<p class="muted">one latent vector (an encoded image, or a prior draw for a GAN); each row sweeps one '
              "latent over its codebook values (continuous latents: their range on the evaluation set; a GAN's "
              "uniform prior: [0, 1))</p>",
              _figure(directory, "traversals.png", "latent traversals",
                      f"{missing}, or the latents have no scalar axis to sweep (a VQ slot's code is a vector)", root)]
    parts += ["<h2>Reconstructions</h2>", cap, '<p class="muted">top row: input; bottom row: the decoder (a GAN\'s '
              "generator) applied to the encoding</p>",
              _figure(directory, "reconstructions.png", "reconstructions", missing, root)]
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

    `step` picks the checkpoint whose model is shown (default: the latest intact one). A run without checkpoints
    still gets a report from its logs and saved figures, with a note that no model was saved yet. Raises UserError
    for a path that is not a run directory or a step without a checkpoint.
    """
    run = RunDir(run_dir)
    if not run.is_run():
        raise UserError(f"{run.path} is not a run directory (no config.yaml)")
    cfg = run.read_config()
    log = run.read_log()
    saved = run.checkpoint_steps()
    if step is not None and step not in saved:
        raise UserError(f"{run.path} has no checkpoint for step {step}; saved: {', '.join(map(str, saved)) or 'none'}")
    out = run.report if out is None else Path(out).expanduser()

    body: list[str] = []
    with tempfile.TemporaryDirectory(prefix="latentquant-report-") as tmp_name:
        tmp = Path(tmp_name)
        curves = _curves(log, tmp)
        model: LatentModel | None = None
        data: GroundTruthData | None = None
        why_no_model = "No checkpoint has been saved yet, so the model cannot be rebuilt: the figures below are " \
                       "the latest saved ones and codebook usage is not available."
        if saved:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    data, model, meta = load_run_model(run.path, cfg, step)
                for w in caught:  # a bad newer checkpoint: say which, and that an older one is shown
                    warnings.warn(str(w.message), ReportWarning, stacklevel=2)
                step = meta["step"]
            except UserError as e:  # e.g. the data file moved: the logs still make a useful report
                why_no_model = f"The model could not be rebuilt ({e}); codebook usage is not available."
                warnings.warn(f"report without the model: {e}", ReportWarning, stacklevel=2)
        body.append(_summary(run, cfg, log, saved, step))
        body.append(curves)
        if model is None or data is None:
            body.append(_note(why_no_model))
            shown = _evaluated_dir(run, step)
            caption = f"from the evaluation at {shown.name.replace('_', ' ')}" if shown else ""
            body.append(_figures(shown, caption, run.path))
            body += ["<h2>Codebook usage</h2>", _note(why_no_model)]
        else:
            from ..build import run_device

            assert step is not None
            indices = data_split(len(data), cfg.data)[1]
            device = run_device(cfg)
            shown = run.eval_dir(step)
            caption = f"step {step}, from the evaluation written during training"
            root = run.path
            if not (shown / "reconstructions.png").is_file() or shown.is_symlink():
                shown = root = tmp / "eval"
                scores = evaluate(model, data, indices, replace(cfg.eval, figures=True), step=step, out_dir=shown,
                                  device=device, channels_last=cfg.train.channels_last)
                supervised = (f"InfoM {scores['infom']:.3f}, InfoE {scores['infoe']:.3f}, InfoC {scores['infoc']:.3f}, "
                              if "infom" in scores else "")
                caption = (f"step {step}, evaluated for this report (it has no saved figures): {supervised}"
                           f"PSNR {scores['psnr']:.2f}")
            body.append(_figures(shown, caption, root, labelled=data.labelled))
            usage = latent_usage(model, data, indices, batch_size=cfg.eval.batch_size, device=device)
            body.append(_usage(usage, step, tmp))
    config_text = read_regular(run.config, run.path).decode(errors="replace")
    body += ["<h2>Config</h2>", f"<pre>{_e(config_text)}</pre>"]
    title = f"{cfg.model.name} on {cfg.data.name}, seed {cfg.seed}: {run.path.name}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, _page(title, body))
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return out


def _evaluated_dir(run: RunDir, step: int | None) -> Path | None:
    """eval/step_<step> if it holds figures, else the latest evaluation that does (None if none)."""
    candidates = [run.eval_dir(s) for s in run.eval_steps() if (run.eval_dir(s) / "reconstructions.png").is_file()]
    preferred = [p for p in candidates if step is not None and p.name == f"step_{step}"]
    return (preferred or candidates[-1:] or [None])[0]
