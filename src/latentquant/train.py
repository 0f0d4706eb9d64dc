"""The training loop, top to bottom, for every model.

Each iteration hands a fresh batch to `model.train_step` (one update for an autoencoder; a critic update
and every fifth iteration a generator update for a GAN). Evaluation at step 0, every `eval_every / 10`
steps before `eval_every`, then every `eval_every` steps and at the end (the reference's schedule);
checkpoints every `checkpoint_every` steps and at the end. A run killed at any point resumes from its
last intact checkpoint and ends exactly where an uninterrupted run ends. A non-finite loss stops the run at
once, and SIGTERM, SIGHUP or SIGINT stop it after the current step with a checkpoint to resume from.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from . import environment
from .build import Network, load_data, make_model, set_threads, train_device
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config, TrainConfig, cooldown_steps
from .denormals import flushing_denormals
from .errors import Interrupted, UserError, warn
from .evaluate import data_split, evaluate, to_input
from .runs import Logger, RunDir, minutes_and_seconds


def is_eval_step(step: int, total: int, every: int, early: bool = True) -> bool:
    """The reference's schedule: step 0, every `every` steps, the end; if `early`, every every/10 before."""
    if step == 0 or step == total or step % every == 0:
        return True
    return early and step < every and step % max(every // 10, 1) == 0


class TimeSpent:
    """Wall-clock seconds per stage of a run, printed at its end: where ten minutes went is the first question
    about a slow run (rendering the data, compiling, the steps, the evaluations)."""

    STAGES = ("data", "first step", "steps", "evaluations", "checkpoints")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.STAGES, 0.0)
        self.steps_run = 0
        self.started = time.perf_counter()

    @contextmanager
    def stage(self, name: str):
        begin = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - begin

    def summary(self, compiled: bool) -> str:
        total = time.perf_counter() - self.started
        parts = [f"{k}{' (compiles)' if compiled and k == 'first step' else ''} {v:.1f} s"
                 for k, v in self.seconds.items()]
        other = total - sum(self.seconds.values())
        return f"time: {', '.join(parts)}, other {max(other, 0.0):.1f} s; total {minutes_and_seconds(total)}"

    def record(self) -> dict[str, float]:
        """This session's steps and seconds per stage as metrics.jsonl stores them (`latentquant table --time`)."""
        return {"steps_run": self.steps_run, **{k.replace(" ", "_"): v for k, v in self.seconds.items()},
                "total": time.perf_counter() - self.started}


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The rate of the update made at `step`: a linear warm-up from lr/warmup over `warmup` steps, then under
    the constant schedule `train.lr` with, over its last n = cooldown · steps updates, a straight line down to
    lr/n at the last one; under the cosine half a cosine from lr down to 0 at `train.steps`. A function of the
    step alone, so a resumed run follows the uninterrupted run's rates."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    if cfg.schedule == "constant":
        left, span = cfg.steps - step, cooldown_steps(cfg)  # updates still to make, this one included
        return cfg.lr * min(1.0, left / span) if span else cfg.lr
    span = max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step - cfg.warmup, span) / span))


def rate_varies(cfg: TrainConfig) -> bool:
    """Whether the loop must set (and log) the rate each step; a constant one stays the optimizer's own."""
    return cfg.schedule != "constant" or cfg.warmup > 0 or cooldown_steps(cfg) > 0


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


class Diverged(UserError):
    """A loss term became NaN or infinite: the step that produced it is never saved."""


class Window:
    """Each logged term's mean over the steps that logged it since the last log line (a GAN's generator terms
    come every fifth step); checkpointed, so a resumed run's first log line is the uninterrupted one's."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.sums: dict[str, float] = dict(state.get("sums", {}))
        self.counts: dict[str, int] = dict(state.get("counts", {}))
        self.steps: int = int(state.get("steps", 0))

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: v / self.counts[k] for k, v in self.sums.items()}

    def state(self) -> dict[str, Any]:
        return {"sums": self.sums, "counts": self.counts, "steps": self.steps}


_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name))


@contextmanager
def _stop_requests():
    """A list that a stop signal appends to; a second Ctrl-C interrupts at once (the usual escape hatch)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be installed from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        if received and signum == signal.SIGINT:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in _STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _resume_threads(recorded: int) -> None:
    """Use the recorded thread count (the free cores for runs that recorded 0), warning when it is more than
    the cores other processes now leave free: the machine is sampled once."""
    from .threads import available_cores, choose_threads

    free = choose_threads(0)
    threads = set_threads(recorded or free)
    if threads > free and threads > 1:
        cores = available_cores()
        warn(f"{cores - free} of {cores} cores are busy with other processes; this run uses {threads} threads, "
             f"each waiting on the busiest core; train.threads={free} would run faster (and change the last bits "
             "of the results)")


def train(cfg: Config, *, encoder: Network | None = None, decoder: Network | None = None) -> dict[str, float]:
    """Train a finished config (config.resolve), or continue a run (config.resume); returns the final metrics.

    `encoder` / `decoder`: your own networks in place of the built-in pair (a module, or a function of no
    arguments returning one, called after torch.manual_seed(cfg.seed)); a resume takes the same classes again.
    """
    spent = TimeSpent()
    if cfg.resume is None:
        # config.yaml records the count that ran (0 picks the free cores): a resume repeats it, and with it the
        # last bits of every kernel's reductions, which depend on the number of threads.
        cfg.train.threads = set_threads(cfg.train.threads)
    else:
        _resume_threads(cfg.train.threads)
    device = train_device(cfg)
    with spent.stage("data"):
        data = load_data(cfg)  # bad data fails here, before anything is written
    train_rows, evals = data_split(len(data), cfg.data)
    if cfg.resume is None and cfg.data.channels is None:
        cfg.data.channels = data.image_shape[2]  # config.yaml then says everything the networks' shapes depend on
    torch.manual_seed(cfg.seed)
    model = make_model(cfg, data, encoder, decoder, record=cfg.resume is None).to(device)
    channels_last = cfg.train.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizers = model.configure_optimizers(lr=cfg.train.lr, weight_decay=cfg.model.weight_decay or 0.0,
                                            fused=cfg.train.fused or None)
    if cfg.train.compile:
        model.compile_for_training()
    # Sampling inside a step (a GAN's prior draws) uses this CPU generator: the same draws on any device.
    rng = torch.Generator().manual_seed(cfg.seed)
    n_train = len(data) if train_rows is None else len(train_rows)
    stream = BatchStream(n_train, cfg.train.batch_size, cfg.seed)
    window = Window()
    start = 0
    run = RunDir.create(cfg) if cfg.resume is None else RunDir.open(cfg.run_dir)  # type: ignore[arg-type]
    try:
        if run.lock is not None and run.lock.took_over:
            warn(f"took over the stale lock of process {run.lock.took_over.get('pid')} in {run.path}")
        if cfg.resume is not None:
            if run.checkpoint_steps():
                meta = load_checkpoint(run.checkpoints, model, optimizers, fallback=True, warn=warn)
                start = meta["step"]
                stream = BatchStream(n_train, cfg.train.batch_size, cfg.seed, **meta["stream"])
                torch.set_rng_state(torch.tensor(meta["torch_rng"], dtype=torch.uint8))
                saved_rng = meta.get("rng", meta.get("prior_rng"))  # prior_rng: GAN checkpoints of before
                if saved_rng is not None:
                    rng.set_state(torch.tensor(saved_rng, dtype=torch.uint8))
                window = Window(meta.get("window"))
            for optimizer in optimizers.values():  # a resume may change the learning rate from here on
                for group in optimizer.param_groups:
                    group["lr"] = cfg.train.lr
            if cfg.changes and cfg.changes[-1].get("step") is None:
                cfg.changes[-1]["step"] = start
                run.save_config(cfg)
        logger = Logger(run, start if cfg.resume is not None else None)
        here = environment.describe(device)
        earlier = run.environments() if cfg.resume is not None else []  # a new run has no sessions before it
        moved = environment.differences(earlier[-1], here) if earlier else []
        if moved:
            warn(f"this run continues on another stack ({'; '.join(moved)}): from step {start} its numbers differ in "
                 "the last bits from those of a run that stayed on one (docs/architecture.md, Reproducibility)")
        logger.log("environment", start, here)
        try:
            with flushing_denormals():  # AdamW's decaying moments would otherwise slow the steps (denormals.py)
                result = _loop(cfg, run, logger, data, model, optimizers, rng, stream, window, start, device,
                               train_rows, evals, spent)
        except Interrupted:
            # A stopped session has checkpointed where it stopped; its record lets the resumed run's total add up.
            logger.log("time", start + spent.steps_run, spent.record())
            raise
        else:
            logger.log("time", start + spent.steps_run, spent.record())
            print(spent.summary(cfg.train.compile), file=sys.stderr)
            return result
        finally:
            logger.close()
    finally:
        run.release()


def _loop(cfg: Config, run: RunDir, logger: Logger, data, model, optimizers, rng: torch.Generator,
          stream: BatchStream, window: Window, start: int, device: torch.device, train_rows: np.ndarray | None,
          evals: np.ndarray, spent: TimeSpent) -> dict[str, float]:
    total = cfg.train.steps
    channels_last, varies = cfg.train.channels_last, rate_varies(cfg.train)
    print(f"run: {run.path}  model={cfg.model.name} data={cfg.data.name} latents={cfg.model.num_latents} "
          f"params={sum(p.numel() for p in model.parameters()):,} steps={start}->{total} "
          f"threads={torch.get_num_threads()}", file=sys.stderr)
    saved = start if cfg.resume is not None and start > 0 else None

    def checkpoint(step: int) -> None:
        nonlocal saved
        state = {"stream": stream.state(), "torch_rng": torch.get_rng_state().tolist(),
                 "rng": rng.get_state().tolist(), "window": window.state()}
        save_checkpoint(run.checkpoints, step, model, optimizers, state, keep=cfg.train.keep_checkpoints)
        saved = step

    def resume_hint() -> str:
        if saved is None:
            return "no checkpoint was saved yet: start the run again"
        return f"resume from checkpoint step {saved} with: latentquant train resume={run.path}"

    from tqdm import tqdm

    bar = tqdm(total=total, initial=start, disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr)
    window_start = time.perf_counter()
    last_eval: dict[str, float] = {}
    redo_eval = logger.dropped_eval  # a resumed run makes the evaluation at its checkpoint again
    model.train()
    step = start
    with _stop_requests() as stop:
        while True:
            if step > start and (step % cfg.train.checkpoint_every == 0 or step == total):
                with spent.stage("checkpoints"):
                    checkpoint(step)
            if is_eval_step(step, total, cfg.train.eval_every, cfg.train.eval_early) or (step == start and redo_eval):
                with spent.stage("evaluations"):
                    last_eval = evaluate(model, data, evals, cfg.eval, step=step, out_dir=run.eval_dir(step),
                                         device=device, channels_last=channels_last,
                                         suite=cfg.eval.suite and step == total)
                logger.log("eval", step, last_eval)
                window_start = time.perf_counter()  # throughput counts training time only
            if step >= total:
                break
            if stop:
                name = signal.Signals(stop[0]).name
                if saved != step:
                    checkpoint(step)
                bar.close()
                raise Interrupted(f"stopped by {name} at step {step}; {resume_hint()}", 128 + stop[0])
            with spent.stage("first step" if step == start else "steps"):
                rows = stream.next()
                # Sorted stream rows map to sorted training rows: the store is still read in order.
                x = to_input(data.images[rows if train_rows is None else train_rows[rows]], device, channels_last)
                if varies:
                    rate = learning_rate(cfg.train, step)
                    for optimizer in optimizers.values():
                        for group in optimizer.param_groups:
                            group["lr"] = rate
                terms = model.train_step(x, step, optimizers, clip=cfg.train.clip, rng=rng)
                values = {k: float(v) for k, v in terms.items()}
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                bar.close()
                raise Diverged(f"step {step + 1}: loss term {bad[0]} is {values[bad[0]]}; nothing of this step was "
                               f"saved; {resume_hint()} (a lower train.lr may help)")
            step += 1
            spent.steps_run += 1
            window.add(values)
            if step % cfg.train.log_every == 0 or step == total:
                elapsed = time.perf_counter() - window_start
                logged = window.means()
                logged["images_per_s"] = window.steps * cfg.train.batch_size / max(elapsed, 1e-9)
                if varies:
                    logged["lr"] = learning_rate(cfg.train, step - 1)
                logger.log("train", step, logged)
                shown = next((k for k in logged if k.endswith("loss")), next(iter(logged)))
                bar.set_postfix({shown: f"{logged[shown]:.4f}"},
                                img_s=f"{logged['images_per_s']:.0f}")
                window = Window()
                window_start = time.perf_counter()
            bar.update(1)
    bar.close()
    return last_eval
