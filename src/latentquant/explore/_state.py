"""What the explorer knows about one run: its model, evaluation set, latent controls, NMI labels and scores.

Everything is read through the contracts the rest of the package uses (evaluate.load_run_model, the latent
module's ``sweep`` / ``codebook_values`` / ``codebook_sizes``, the model's ``decode`` / ``traversal_start``,
runs.RunDir), so the explorer never asks which model it is, except that a GAN (registry family) gets a
"sample the prior" button: its prior draws are what its traversals start from.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from .. import viz
from ..config import Config
from ..data import GroundTruthData
from ..errors import UserError
from ..evaluate import eval_indices, latent_usage, load_run_model, to_input
from ..metrics import infomec
from ..metrics.protocols import get_protocol
from ..models import LatentModel
from ..models.registry import MODELS
from ..runs import RunDir, shared_dataset_configs

STRIP = 12  # dataset images offered as starting points
HISTOGRAM_BINS = 20  # a continuous latent's "usage": how its values spread over the evaluation set
HEADLINE = ("infom", "infoe", "infoc", "psnr", "active_latents")


class BadRequest(ValueError):
    """A request the explorer refuses: ``status`` is the HTTP status it answers with (always 4xx)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LatentControl:
    """One latent's slider: a scalar codebook (snapping to its values) or a continuous range."""

    index: int
    kind: Literal["codebook", "range"]
    low: float
    high: float
    values: list[float] | None  # the codebook (kind "codebook"), ascending as the slider runs
    factor: str | None  # the factor this latent shares the most information with (None if no factor)
    nmi: float  # that NMI
    active: bool  # InfoMEC's activity test on the evaluation set
    usage: list[int]  # images per codebook value, or per histogram bin of [low, high]

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "low": self.low, "high": self.high, "values": self.values,
                "factor": self.factor, "nmi": _finite(self.nmi), "active": self.active, "usage": self.usage}


@dataclass
class RunView:
    """A loaded run, ready to decode codes into images; thread-safe (the model runs under a lock)."""

    path: Path
    cfg: Config
    model: LatentModel
    data: GroundTruthData
    device: torch.device
    step: int
    family: str
    indices: np.ndarray  # the evaluation set (rows of data)
    controls: list[LatentControl]
    nmi: np.ndarray  # (factors, latents)
    scores: dict[str, Any]
    start: list[float] | None = None  # the page's first code (create_app sets it)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def num_latents(self) -> int:
        return len(self.controls)

    @property
    def image_size(self) -> int:
        return int(self.data.image_shape[0])

    def summary(self) -> dict[str, Any]:
        """What the page shows of the run (JSON-ready)."""
        return {"name": self.name, "path": str(self.path), "model": self.cfg.model.name, "family": self.family,
                "step": self.step, "dataset": self.cfg.data.name, "image_size": self.image_size,
                "latents": [c.as_json() for c in self.controls], "factors": list(self.data.factor_names),
                "nmi": [[_finite(v) for v in row] for row in self.nmi.tolist()], "scores": self.scores,
                "start": self.start}

    # --- codes ----------------------------------------------------------------------------------------------

    def check_code(self, values: Any) -> torch.Tensor:
        """The decoder input for ``values`` (one number per latent), refused with a BadRequest unless every
        number is finite and in its latent's range; a codebook latent's value snaps to the codebook value it
        names (JSON and URLs carry the float32 values in decimal, so it must be within rounding of one)."""
        if not isinstance(values, list | tuple):
            raise BadRequest("a code is a list of numbers, one per latent")
        if len(values) != self.num_latents:
            raise BadRequest(f"run {self.name} has {self.num_latents} latents, got {len(values)} values")
        code = []
        for control, raw in zip(self.controls, values, strict=True):
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise BadRequest(f"latent {control.index}: {raw!r} is not a number")
            try:
                value = float(raw)
            except ValueError:
                raise BadRequest(f"latent {control.index}: {str(raw)[:40]!r} is not a number") from None
            if not math.isfinite(value):
                raise BadRequest(f"latent {control.index}: {value} is not finite")
            code.append(self._snap(control, value))
        return torch.tensor([code], dtype=torch.float32)

    def _snap(self, control: LatentControl, value: float) -> float:
        span = max(control.high - control.low, 1.0)
        tolerance = 1e-5 * span
        if control.values is not None:
            nearest = min(control.values, key=lambda v: abs(v - value))
            if abs(nearest - value) > tolerance:
                raise BadRequest(f"latent {control.index}: {value} is not one of its codebook values "
                                 f"{[round(v, 4) for v in control.values]}", status=422)
            return nearest
        if not control.low - tolerance <= value <= control.high + tolerance:
            raise BadRequest(f"latent {control.index}: {value} is outside its range [{control.low:.4g}, "
                             f"{control.high:.4g}]", status=422)
        return value

    @torch.no_grad()
    def decode(self, code: torch.Tensor) -> np.ndarray:
        """(H, W, C) uint8: the decoder's image for one checked code (check_code)."""
        with self._lock:
            logits = self.model.decode(code.to(self.device))
        return viz.to_uint8(torch.sigmoid(logits).float().cpu().numpy())[0]

    def decode_png(self, code: torch.Tensor) -> bytes:
        return png_bytes(self.decode(code))

    @torch.no_grad()
    def encode_rows(self, rows: np.ndarray) -> list[list[float]]:
        """The codes of data rows, as the decoder receives them (codebook latents snapped to their values)."""
        with self._lock:
            z = self.model.encode(to_input(self.data.images[np.sort(rows)], self.device)).z_hat
        order = np.argsort(np.argsort(rows))  # back from the sorted read (HDF5 wants increasing rows)
        return [[self._nearest(c, float(v)) for c, v in zip(self.controls, row, strict=True)]
                for row in z.float().cpu().numpy()[order]]

    def _nearest(self, control: LatentControl, value: float) -> float:
        # The straight-through z + (q - z) equals the codebook value only up to float rounding.
        if control.values is None:
            return min(max(value, control.low), control.high)
        return min(control.values, key=lambda v: abs(v - value))

    def prior_sample(self, seed: int) -> list[float]:
        """A draw from a GAN's prior (its traversal start), as a code; BadRequest for a model without a prior."""
        if self.family != "gan":
            raise BadRequest(f"run {self.name} ({self.cfg.model.name}) is not a GAN: it has no prior to sample")
        images = to_input(self.data.images[self.indices[:1]], self.device)
        with self._lock, torch.no_grad():
            z = self.model.traversal_start(images, torch.Generator().manual_seed(seed))
        return [self._nearest(c, float(v)) for c, v in zip(self.controls, z[0].float().cpu().numpy(), strict=True)]

    def start_code(self) -> list[float]:
        """Where the traversal figures start: the first evaluation image's code, or a GAN's first prior draw."""
        if self.family == "gan":
            return self.prior_sample(0)
        return self.encode_rows(self.indices[:1])[0]

    def traversal_values(self, j: int) -> list[float]:
        """The values a static traversal of latent j shows: its codebook, or evenly spaced over its range."""
        control = self.controls[j]
        if control.values is not None:
            return list(control.values)
        n = max(self.cfg.eval.traversal_values, 2)
        return [float(v) for v in np.linspace(control.low, control.high, n)]


def png_bytes(image: np.ndarray) -> bytes:
    """(H, W, C) uint8 as PNG (lossless, so a browser's pixels are the decoder's uint8 output)."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _scores(run: RunDir, cfg: Config) -> dict[str, Any]:
    """The run's headline scores: its final evaluation, else the latest one logged (empty if none)."""
    final = run.final_metrics(cfg)
    if final is None:
        evals = [r for r in run.read_log() if r.get("split") == "eval"]
        final = dict(evals[-1]) if evals else {}
        final.pop("split", None)
    shown = {k: final[k] for k in ("step", *HEADLINE) if k in final}
    shown.update({k: v for k, v in final.items() if k not in shown and isinstance(v, int | float)
                  and not isinstance(v, bool) and not k.startswith("val/") and k != "images_per_s"})
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in shown.items()}


def _controls(model: LatentModel, reps: np.ndarray, nmi: np.ndarray, active: np.ndarray, counts: np.ndarray | None,
              factor_names: list[str]) -> list[LatentControl]:
    latent = model.latent
    books = latent.codebook_values()
    controls = []
    for j in range(reps.shape[1]):
        sweep = latent.sweep(j, reps, 2)
        if sweep is None:  # a VQ slot: a vector code, no scalar axis for a slider
            raise UserError(f"{model.latent.__class__.__name__} latents have no scalar axis to explore "
                            "(a vector-quantized slot is a vector); the explorer needs scalar latents")
        column = nmi[:, j] if nmi.size else np.zeros(0)
        best = int(np.nanargmax(column)) if column.size and np.isfinite(column).any() else None
        factor = factor_names[best] if best is not None else None
        score = float(column[best]) if best is not None else float("nan")
        if books is not None:
            values = [float(v) for v in books[j].float().cpu().numpy()]
            order = np.argsort(values)  # a slider runs low to high; a learned codebook need not be sorted
            usage = [int(counts[j, k]) for k in order] if counts is not None else [0] * len(values)
            values = [values[k] for k in order]
            controls.append(LatentControl(j, "codebook", values[0], values[-1], values, factor, score,
                                          bool(active[j]), usage))
        else:
            # The evaluation set's values, widened to the sweep's (a GAN's prior support is not its critic's).
            low = float(min(reps[:, j].min(), sweep.min()))
            high = float(max(reps[:, j].max(), sweep.max()))
            hist, _ = np.histogram(reps[:, j], bins=HISTOGRAM_BINS, range=(low, high) if high > low else None)
            controls.append(LatentControl(j, "range", low, high, None, factor, score, bool(active[j]),
                                          [int(h) for h in hist]))
    return controls


def _nmi(model: LatentModel, cfg: Config, data: GroundTruthData, indices: np.ndarray,
         reps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """InfoMEC's NMI matrix (factors, latents) and activity on the evaluation set, under the run's protocol."""
    protocol = get_protocol(cfg.eval.protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate latents of a barely trained model are expected here
        scores = infomec(data.values(indices), reps, discrete_latents=model.discrete_latents,
                         activity=protocol.infomec_activity, n_neighbors=protocol.infomec_neighbors,
                         infoe_max_iter=protocol.infoe_max_iter, nmi_floor=cfg.eval.nmi_floor)
    return np.asarray(scores["nmi"], dtype=float), np.asarray(scores["active_latents"], dtype=bool)


def open_run(path: str | Path, step: int | None = None, *, indices: np.ndarray | None = None,
             num_eval: int | None = None, warn: Callable[[str], None] | None = None) -> RunView:
    """Load a run for exploring: the checkpoint of ``step`` (default the latest intact one, after ``warn``ing
    about each bad newer one) and the evaluation set ``indices`` (default: the run's own, of ``num_eval``
    images or the run's data.num_eval)."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise UserError(f"no run directory {run.path}")
    if not run.is_run():
        raise UserError(f"{run.path} is not a run directory (no config.yaml)")
    if not run.checkpoint_steps():
        raise UserError(f"{run.path} has no checkpoint yet: train it first (latentquant train resume={run.path})")
    cfg = run.read_config()
    data, model, meta = load_run_model(run.path, cfg, step, warn=warn)
    if indices is None:
        indices = eval_indices(len(data), num_eval or cfg.data.num_eval, cfg.data.seed)
    return view_of(model, data, cfg, indices, path=run.path, step=int(meta["step"]), scores=_scores(run, cfg))


def view_of(model: LatentModel, data: GroundTruthData, cfg: Config, indices: np.ndarray, *, path: Path,
            step: int, scores: dict[str, Any]) -> RunView:
    """A RunView of a model in eval mode on ``data`` (its evaluation set ``indices``), wherever it came from:
    a run's checkpoint (open_run) or a freshly built model (benchmarks/bench_explore.py times one)."""
    from ..build import run_device

    device = run_device(cfg)
    usage = latent_usage(model, data, indices, batch_size=cfg.eval.batch_size, device=device)
    reps = usage.representations
    nmi, active = _nmi(model, cfg, data, indices, reps)
    controls = _controls(model, reps, nmi, active, usage.counts, list(data.factor_names))
    with torch.no_grad():
        probe = model.encode(to_input(data.images[indices[:1]], device)).z_hat
    if probe.shape[1] != len(controls):
        raise UserError(f"{cfg.model.name}: the decoder takes {probe.shape[1]} numbers for {len(controls)} "
                        "latents; the explorer needs one number per latent")
    family = MODELS[cfg.model.name].family if cfg.model.name in MODELS else "autoencoder"
    return RunView(Path(path), cfg, model, data, device, step, family, indices, controls, nmi, scores)


def open_runs(paths: list[str | Path], step: int | None = None, num_eval: int | None = None,
              warn: Callable[[str], None] | None = None) -> list[RunView]:
    """One or more runs, which must share a dataset (same file or look-alike) and image size: every run
    encodes the first run's evaluation images, so their starting points are the same pictures."""
    if not paths:
        raise UserError("give a run directory to explore")
    for path in paths:  # every bad path named before minutes of loading
        run = RunDir(path)
        if not run.path.is_dir():
            raise UserError(f"no run directory {run.path}")
        if not run.is_run():
            raise UserError(f"{run.path} is not a run directory (no config.yaml)")
    shared_dataset_configs(list(paths), "runs compared side by side must share a dataset and image size")
    first = open_run(paths[0], step, num_eval=num_eval, warn=warn)
    return [first, *(open_run(p, step, indices=first.indices, warn=warn) for p in paths[1:])]
