"""The training loop of the GAN family (InfoWGAN-GP, QLInfoWGAN-GP), top to bottom.

Every iteration: one critic/encoder step on a fresh real batch; every `GENERATOR_PERIOD`-th iteration
((step + 1) % 5 == 0) also one generator step. `train.steps` counts critic steps, as the reference's
`num_steps`. Evaluation, checkpoints, logging and resuming follow train.py; a checkpoint holds both
optimizers and the prior-sampling generator's state, so a resumed run ends where an uninterrupted one does.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from . import viz
from .config import Config
from .errors import UserError
from .evaluate import evaluate, suite_options, to_input
from .models import InfoWGAN, clip_gradients, make_gan_optimizers
from .train import is_eval_step, load_data, make_model, open_run, set_threads

GENERATOR_PERIOD = 5
BETAS = (0.0, 0.9)
FIGURE_SEED = 0  # samples and traversals start from the same prior draws at every evaluation


@torch.no_grad()
def sample_images(model: InfoWGAN, n: int = 16) -> np.ndarray:
    """`n` unconditional samples from the prior, as a (2, n/2) uint8 grid."""
    z = model.sample_prior(n, torch.Generator().manual_seed(FIGURE_SEED))
    images = viz.to_uint8(model.fake(z).float().cpu().numpy())
    return images.reshape(2, n // 2, *images.shape[1:])


@torch.no_grad()
def prior_traversals(model: InfoWGAN, num_values: int = 10) -> np.ndarray:
    """One row per latent, from one prior sample: the codebook values of a quantized latent, else a sweep of [0, 1)."""
    z = model.sample_prior(1, torch.Generator().manual_seed(FIGURE_SEED))
    rows = []
    for j in range(z.shape[1]):
        if hasattr(model.latent, "codebook"):
            sweep = model.latent.codebook(j).detach()
        else:
            sweep = torch.arange(num_values, device=z.device) / num_values
        zs = z.repeat(len(sweep), 1)
        zs[:, j] = sweep.to(zs.dtype)
        rows.append(viz.to_uint8(model.fake(zs).float().cpu().numpy()))
    grid = np.full((len(rows), max(len(r) for r in rows), *rows[0].shape[1:]), 255, dtype=np.uint8)
    for j, r in enumerate(rows):
        grid[j, : len(r)] = r
    return grid


def train_gan(cfg: Config) -> dict[str, float]:
    """Train (or resume) a GAN run; returns the final evaluation's metrics."""
    set_threads(cfg.train.threads)
    device = torch.device(cfg.train.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda but no CUDA device is available")
    data = load_data(cfg)
    torch.manual_seed(cfg.seed)
    model: InfoWGAN = make_model(cfg, data).to(device)  # type: ignore[assignment]
    channels_last = cfg.train.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizers = make_gan_optimizers(model, lr=cfg.train.lr, weight_decay=cfg.model.weight_decay or 0.0,
                                     betas=BETAS, fused=cfg.train.fused or None)
    # Prior samples and interpolation weights come from their own CPU generator: same draws on any device.
    rng = torch.Generator().manual_seed(cfg.seed)

    run = open_run(cfg, data, model, optimizers)
    run_dir, stream, logger, evals, start = run.dir, run.stream, run.logger, run.evals, run.start
    if "prior_rng" in run.meta:
        rng.set_state(torch.tensor(run.meta["prior_rng"], dtype=torch.uint8))
    total = cfg.train.steps
    print(f"run: {run_dir}  model={cfg.model.name} data={cfg.data.name} latents={cfg.model.num_latents} "
          f"params={sum(p.numel() for p in model.parameters()):,} critic steps={start}->{total}", file=sys.stderr)

    def checkpoint(step: int) -> None:
        run.save(step, model, optimizers, cfg.train.keep_checkpoints, prior_rng=rng.get_state().tolist())

    def run_eval(step: int) -> dict[str, float]:
        out_dir = run_dir / "eval" / f"step_{step}"
        metrics = evaluate(model, data, evals, step=step, out_dir=out_dir, batch_size=cfg.eval.batch_size,
                           device=device, channels_last=channels_last, figures=cfg.eval.figures,
                           traversal_values=cfg.eval.traversal_values, extended=suite_options(cfg, step))
        if cfg.eval.figures:
            model.eval()
            viz.save_grid(sample_images(model), out_dir / "samples.png")
            viz.save_grid(prior_traversals(model, cfg.eval.traversal_values), out_dir / "traversals.png")
            model.train()
        logger.log("eval", step, metrics)
        return metrics

    def step_on(name: str, loss: torch.Tensor) -> None:
        optimizer = optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(optimizer, cfg.train.clip)
        optimizer.step()

    from tqdm import tqdm

    bar = tqdm(total=total, initial=start, disable=not cfg.progress, dynamic_ncols=True, file=sys.stderr)
    window: dict[str, float] = {}
    counts: dict[str, int] = {}
    window_steps, window_start = 0, time.perf_counter()
    last_eval: dict[str, float] = {}
    model.train()
    step = start
    while True:
        if step > start and (step % cfg.train.checkpoint_every == 0 or step == total):
            checkpoint(step)
        if is_eval_step(step, total, cfg.train.eval_every, cfg.train.eval_early):
            last_eval = run_eval(step)
            window_start = time.perf_counter()
        if step >= total:
            break
        x = to_input(data.images[stream.next()], device, channels_last)
        loss, terms = model.critic_loss(x, rng)
        step_on("encoder", loss)
        logged = {f"critic/{k}": v for k, v in terms.items()}
        if (step + 1) % GENERATOR_PERIOD == 0:
            # The reference's generator step takes the real batch only for its size.
            loss, terms = model.generator_loss(x.shape[0], rng)
            step_on("generator", loss)
            logged.update({f"generator/{k}": v for k, v in terms.items()})
        step += 1
        for k, v in logged.items():
            window[k] = window.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1
        window_steps += 1
        if step % cfg.train.log_every == 0 or step == total:
            elapsed = time.perf_counter() - window_start
            values = {k: v / counts[k] for k, v in window.items()}
            values["images_per_s"] = window_steps * cfg.train.batch_size / max(elapsed, 1e-9)
            logger.log("train", step, values)
            bar.set_postfix(critic=f"{values['critic/loss']:.3f}", img_s=f"{values['images_per_s']:.0f}")
            window, counts, window_steps, window_start = {}, {}, 0, time.perf_counter()
        bar.update(1)
    bar.close()
    logger.close()
    return last_eval
