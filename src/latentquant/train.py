"""The training loop of the autoencoder family, top to bottom.

One optimizer step per iteration on a fresh batch; evaluation at step 0, every `eval_every / 10` steps
before `eval_every`, then every `eval_every` steps and at the end (the reference's schedule); checkpoints
every `checkpoint_every` steps and at the end. A run killed at any point resumes from its last
checkpoint and ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import config as config_mod
from .checkpoint import atomic_write_text, list_checkpoints, load_checkpoint, save_checkpoint
from .config import Config
from .data import GroundTruthData, load
from .errors import UserError
from .evaluate import evaluate, suite_options, to_input
from .models import GAN_MODELS, ModelParts, build_gan, build_model, clip_gradients, lookup, make_optimizer
from .nets import repeating_stack


def is_eval_step(step: int, total: int, every: int, early: bool = True) -> bool:
    """The reference's schedule: step 0, every `every` steps, the end; if `early`, every every/10 before."""
    if step == 0 or step == total or step % every == 0:
        return True
    return early and step < every and step % max(every // 10, 1) == 0


def eval_indices(n: int, num_eval: int, seed: int) -> np.ndarray:
    """A fixed pseudo-random evaluation subset, drawn from the whole set as the reference's is."""
    return np.random.default_rng(seed).choice(n, size=min(num_eval, n), replace=False)


class BatchStream:
    """Shuffled epochs over N items; its whole state is (epoch, position), so resuming is exact."""

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int = 0, position: int = 0) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.position = epoch, position
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def next(self) -> np.ndarray:
        out = []
        need = self.batch_size
        while need:
            take = self._perm[self.position : self.position + need]
            out.append(take)
            need -= len(take)
            self.position += len(take)
            if self.position >= self.n:
                self.epoch, self.position = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
        # Sorted indices read the store in order (memory maps, caches); the order within a batch is irrelevant.
        return np.sort(np.concatenate(out))

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}


class Logger:
    """metrics.jsonl (one JSON object per logged step) and TensorBoard scalars."""

    def __init__(self, run_dir: Path, resume_step: int | None) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resume_step is not None and self.path.exists():
            # Lines written after the checkpoint are produced again; keep only what came before it.
            kept = [ln for ln in self.path.read_text().splitlines() if ln.strip() and self._before(ln, resume_step)]
            atomic_write_text(self.path, "".join(ln + "\n" for ln in kept))
        self.file = open(self.path, "a")
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)

    @staticmethod
    def _before(line: str, step: int) -> bool:
        rec = json.loads(line)
        return rec["step"] < step or (rec["step"] == step and rec.get("split") == "train")

    def log(self, split: str, step: int, values: dict[str, float]) -> None:
        self.file.write(json.dumps({"split": split, "step": step, **values}) + "\n")
        self.file.flush()
        for k, v in values.items():
            if isinstance(v, int | float) and math.isfinite(v) and k != "step":
                self.tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        self.file.close()
        self.tb.close()


def load_data(cfg: Config) -> GroundTruthData:
    return load(cfg.data.name, cfg.data.path, image_size=cfg.data.image_size)


def model_parts(cfg: Config, data: GroundTruthData) -> ModelParts:
    h, w, c = data.image_shape
    if h != w:
        raise UserError(f"images must be square, got {h}x{w}")
    stack = repeating_stack(cfg.model.widths, cfg.model.blocks_per_stage)
    if h % stack.downsampling:
        raise UserError(f"image size {h} is not divisible by 2**len(model.widths) = {stack.downsampling}")
    return ModelParts(in_channels=c, image_size=h, stack=stack, dense=tuple(cfg.model.dense))


def make_model(cfg: Config, data: GroundTruthData) -> torch.nn.Module:
    """Fills the config's `None`s with what they resolve to, then builds the model from it."""
    if cfg.model.num_latents is None:
        cfg.model.num_latents = 2 * data.num_factors
    defaults = lookup(cfg.model.name).defaults
    for key, value in defaults.items():
        if getattr(cfg.model, key, None) is None:
            setattr(cfg.model, key, value)
    skip = {"name", "num_latents", "widths", "blocks_per_stage", "dense", "weight_decay"}
    hyper = {k: v for k, v in vars(cfg.model).items() if k not in skip and v is not None}
    build = build_gan if cfg.model.name in GAN_MODELS else build_model
    return build(cfg.model.name, model_parts(cfg, data), cfg.model.num_latents, dataset_size=len(data), **hyper)


def prepare_run_dir(cfg: Config) -> Path:
    if cfg.run_dir is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        cfg.run_dir = str(Path("runs") / f"{cfg.model.name}-{cfg.data.name}-seed{cfg.seed}-{stamp}")
    run_dir = Path(cfg.run_dir)
    if (run_dir / "config.yaml").exists():
        raise UserError(f"{run_dir} already holds a run: resume it with resume={run_dir}, or choose another run_dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write the run directory {run_dir}: {e.strerror or e}") from None
    return run_dir


def resolve_resume(cfg: Config, overrides: dict[str, Any]) -> Config:
    """The saved config of the run being resumed, with any overrides the user adds (e.g. more steps)."""
    run_dir = Path(cfg.resume)  # type: ignore[arg-type]
    if not run_dir.is_dir():
        raise UserError(f"cannot resume {run_dir}: no such run directory")
    saved = config_mod.load(run_dir / "config.yaml")
    for key, value in overrides.items():
        if key not in ("resume", "preset"):
            config_mod.set_key(saved, key, value)
    saved.resume, saved.run_dir = str(run_dir), str(run_dir)
    return saved


@dataclass
class Run:
    """A run directory opened for training: fresh, or resumed from its last checkpoint."""

    dir: Path
    stream: BatchStream
    logger: Logger
    evals: np.ndarray
    start: int = 0
    meta: dict[str, Any] = field(default_factory=dict)  # the resumed checkpoint's state, if any

    @property
    def checkpoints(self) -> Path:
        return self.dir / "checkpoints"

    def save(self, step: int, model, optimizers, keep: int, **extra: Any) -> None:
        state = {"stream": self.stream.state(), "torch_rng": torch.get_rng_state().tolist(), **extra}
        save_checkpoint(self.checkpoints, step, model, optimizers, state, keep=keep)


def open_run(cfg: Config, data: GroundTruthData, model: torch.nn.Module, optimizers) -> Run:
    """Create the run directory (or reopen it with `resume`), restoring weights, optimizers and RNG state."""
    if cfg.resume is not None:
        run_dir = Path(cfg.run_dir)  # type: ignore[arg-type]
    else:
        run_dir = prepare_run_dir(cfg)
        config_mod.save(cfg, run_dir / "config.yaml")
    stream = BatchStream(len(data), cfg.train.batch_size, cfg.seed)
    start, meta = 0, {}
    if cfg.resume is not None and list_checkpoints(run_dir / "checkpoints"):
        meta = load_checkpoint(run_dir / "checkpoints", model, optimizers)
        start = meta["step"]
        stream = BatchStream(len(data), cfg.train.batch_size, cfg.seed, **meta["stream"])
        torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
    logger = Logger(run_dir, start if cfg.resume is not None else None)
    return Run(run_dir, stream, logger, eval_indices(len(data), cfg.data.num_eval, cfg.data.seed), start, meta)


def set_threads(n: int) -> None:
    threads = n or os.cpu_count() or 1
    torch.set_num_threads(threads)


def train(cfg: Config) -> dict[str, float]:
    """Train (or resume) a run; returns the final evaluation's metrics."""
    if cfg.model.name in GAN_MODELS:  # two optimizers and an alternating schedule: a loop of their own
        from .gan import train_gan

        return train_gan(cfg)
    set_threads(cfg.train.threads)
    device = torch.device(cfg.train.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available")
    data = load_data(cfg)  # bad data fails here, before anything is written
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, data).to(device)
    channels_last = cfg.train.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, lr=cfg.train.lr, weight_decay=cfg.model.weight_decay or 0.0,
                               fused=cfg.train.fused or None)
    loss_fn = torch.compile(model.loss) if cfg.train.compile else model.loss

    run = open_run(cfg, data, model, optimizer)
    run_dir, stream, logger, evals, start = run.dir, run.stream, run.logger, run.evals, run.start
    total = cfg.train.steps
    print(f"run: {run_dir}  model={cfg.model.name} data={cfg.data.name} latents={cfg.model.num_latents} "
          f"params={sum(p.numel() for p in model.parameters()):,} steps={start}->{total}", file=sys.stderr)

    def checkpoint(step: int) -> None:
        run.save(step, model, optimizer, cfg.train.keep_checkpoints)

    def run_eval(step: int) -> dict[str, float]:
        metrics = evaluate(model, data, evals, step=step, out_dir=run_dir / "eval" / f"step_{step}",
                           batch_size=cfg.eval.batch_size, device=device, channels_last=channels_last,
                           figures=cfg.eval.figures, traversal_values=cfg.eval.traversal_values,
                           extended=suite_options(cfg, step))
        logger.log("eval", step, metrics)
        return metrics

    from tqdm import tqdm

    bar = tqdm(total=total, initial=start, disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr)
    window: dict[str, float] = {}
    window_steps, window_start = 0, time.perf_counter()
    last_eval: dict[str, float] = {}
    model.train()
    step = start
    while True:
        if step > start and (step % cfg.train.checkpoint_every == 0 or step == total):
            checkpoint(step)
        if is_eval_step(step, total, cfg.train.eval_every, cfg.train.eval_early):
            last_eval = run_eval(step)
            window_start = time.perf_counter()  # throughput counts training time only
        if step >= total:
            break
        x = to_input(data.images[stream.next()], device, channels_last)
        loss, terms = loss_fn(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(optimizer, cfg.train.clip)
        optimizer.step()
        step += 1
        for k, v in terms.items():
            window[k] = window.get(k, 0.0) + float(v)
        window_steps += 1
        if step % cfg.train.log_every == 0 or step == total:
            elapsed = time.perf_counter() - window_start
            values = {k: v / window_steps for k, v in window.items()}
            values["images_per_s"] = window_steps * cfg.train.batch_size / max(elapsed, 1e-9)
            logger.log("train", step, values)
            bar.set_postfix(loss=f"{values['loss']:.4f}", img_s=f"{values['images_per_s']:.0f}")
            window, window_steps, window_start = {}, 0, time.perf_counter()
        bar.update(1)
    bar.close()
    logger.close()
    return last_eval


def run_device(cfg: Config) -> torch.device:
    """The run's device if this machine has it, else the CPU (a GPU run can be evaluated on a laptop)."""
    name = cfg.train.device
    return torch.device(name if name == "cpu" or (name.startswith("cuda") and torch.cuda.is_available()) else "cpu")


def load_run_model(run_dir: Path, cfg: Config, step: int | None = None
                   ) -> tuple[GroundTruthData, torch.nn.Module, dict[str, Any]]:
    """The run's data, and its model on `run_device` with the weights of checkpoint `step` (the latest if None);
    the checkpoint's state comes third."""
    set_threads(cfg.train.threads)
    data = load_data(cfg)
    model = make_model(cfg, data).to(run_device(cfg))
    meta = load_checkpoint(Path(run_dir) / "checkpoints", model, step=step)
    return data, model, meta


def evaluate_run(run_dir: str | Path, step: int | None = None, *, dci_predictor: str = "gbt",
                 factorvae_votes: int = 10_000) -> tuple[dict[str, float], Path]:
    """Every metric for a saved checkpoint of a run (the latest unless `step` is given) on its evaluation set."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise UserError(f"no run directory {run_dir}")
    cfg = config_mod.load(run_dir / "config.yaml")
    data, model, meta = load_run_model(run_dir, cfg, step)
    device = run_device(cfg)
    out_dir = run_dir / "eval" / f"step_{meta['step']}"
    metrics = evaluate(model, data, eval_indices(len(data), cfg.data.num_eval, cfg.data.seed), step=meta["step"],
                       out_dir=out_dir, batch_size=cfg.eval.batch_size, device=device,
                       figures=cfg.eval.figures, traversal_values=cfg.eval.traversal_values,
                       extended={"dci_predictor": dci_predictor, "factorvae_votes": factorvae_votes})
    return metrics, out_dir
