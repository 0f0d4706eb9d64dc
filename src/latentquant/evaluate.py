"""Evaluation of an AE-family model on a fixed evaluation set: metrics and figures."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch

from . import viz
from .data import GroundTruthData
from .metrics import infomec, psnr
from .metrics.factorvae import DatasetSampler, factorvae_score
from .metrics.suite import array_metrics


def to_input(images: np.ndarray, device: torch.device | str = "cpu", channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [0, 1] on the device; the conversion runs there."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)


@torch.no_grad()
def encode_dataset(model, data: GroundTruthData, indices: np.ndarray, batch_size: int, device, channels_last=False):
    """Representations, per-image reconstruction PSNR and mean loss terms over `indices`."""
    reps, psnrs, sums, count = [], [], {}, 0
    for start in range(0, len(indices), batch_size):
        idx = indices[start : start + batch_size]
        x = to_input(data.images[idx], device, channels_last)
        out = model(x)
        reps.append(out.latent.representation.float().cpu())
        recon = torch.sigmoid(out.logits).float()
        psnrs.append(psnr(x.cpu().numpy(), recon.cpu().numpy()) * len(idx))
        _, terms = model.objective(x, out)
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value) * len(idx)
        count += len(idx)
    losses = {name: total / count for name, total in sums.items()}
    return torch.cat(reps).numpy(), float(np.sum(psnrs)) / count, losses


@torch.no_grad()
def traversal_images(model, base: torch.Tensor, representations: np.ndarray, num_values: int) -> np.ndarray:
    """One row per latent: decode the base encoding while sweeping that latent.

    Quantized latents sweep their codebook values; continuous ones sweep `num_values` points between
    the latent's minimum and maximum over the evaluation set.
    """
    z = model.encode(base[:1]).z_hat
    d = z.shape[1]
    latent = model.latent
    rows = []
    for j in range(d):
        if getattr(latent, "discrete", False) and hasattr(latent, "codebook"):
            sweep = latent.codebook(j).detach()
        else:
            lo, hi = representations[:, j].min(), representations[:, j].max()
            sweep = torch.linspace(float(lo), float(hi), num_values, device=z.device)
        zs = z.repeat(len(sweep), 1)
        zs[:, j] = sweep.to(zs.dtype)
        rows.append(torch.sigmoid(model.decode(zs)).float().cpu().numpy())
    width = max(len(r) for r in rows)
    c, h, w = rows[0].shape[1:]
    grid = np.ones((d, width, c, h, w), dtype=np.float32)
    for j, r in enumerate(rows):
        grid[j, : len(r)] = r
    return viz.to_uint8(grid)


@torch.no_grad()
def representations(model, images: np.ndarray, batch_size: int, device, channels_last: bool = False) -> np.ndarray:
    """What the metrics score for uint8 images (N, H, W, C): (N, D) float."""
    out = [model.encode(to_input(images[i : i + batch_size], device, channels_last)).representation.float().cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def extended_metrics(model, data: GroundTruthData, reps: np.ndarray, sources: np.ndarray, *, batch_size: int,
                     device, dci_predictor: str = "gbt", factorvae_votes: int = 10_000) -> dict[str, float]:
    """Every other metric of the suite: DCI, MIG, SAP, DCI-ES (on the evaluation set) and the FactorVAE score
    (on fresh samples from the whole dataset, encoded by the model)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = array_metrics(sources, reps, discrete_latents=model.discrete_latents, dci_predictor=dci_predictor)
    scores = {k: v for k, v in scores.items() if k in ("infom_gap", "infoc_gap") or not k.startswith("info")}
    scores.pop("active_latents", None)
    if factorvae_votes > 0:
        sampler = DatasetSampler(data, lambda images: representations(model, images, batch_size, device))
        votes = max(factorvae_votes // 2, 1)
        scores["factorvae_score"] = factorvae_score(sampler, n_train=factorvae_votes, n_eval=votes)["score"]
    scores["dci_predictor"] = dci_predictor
    return scores


def suite_options(cfg, step: int) -> dict | None:
    """The `extended` argument of :func:`evaluate` for a training run's evaluation at `step`."""
    if not cfg.eval.suite or step != cfg.train.steps:
        return None
    return {"dci_predictor": cfg.eval.dci_predictor, "factorvae_votes": cfg.eval.factorvae_votes}


def evaluate(model, data: GroundTruthData, indices: np.ndarray, *, step: int, out_dir: Path | None,
             batch_size: int = 500, device="cpu", channels_last: bool = False, figures: bool = True,
             traversal_values: int = 10, extended: dict | None = None) -> dict[str, float]:
    """All metrics for the model on `data.images[indices]`; writes `metrics.json` and figures to out_dir.

    InfoMEC and PSNR always (they are what training logs); with `extended` (keyword arguments of
    :func:`extended_metrics`), every other metric of the suite too.
    """
    was_training = model.training
    model.eval()
    reps, psnrs, losses = encode_dataset(model, data, indices, batch_size, device, channels_last)
    sources = data.values(indices)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate early-training cases are expected; the numbers say it
        scores = infomec(sources, reps, discrete_latents=model.discrete_latents)
    metrics = {
        "step": step,
        "infom": float(scores["infom"]),
        "infoe": float(scores["infoe"]),
        "infoc": float(scores["infoc"]),
        "psnr": psnrs,
        "active_latents": int(np.sum(scores["active_latents"])),
        **{f"val/{k}": v for k, v in losses.items()},
    }
    if extended is not None:
        metrics.update(extended_metrics(model, data, reps, sources, batch_size=batch_size, device=device,
                                        **extended))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps({**metrics, "nmi": np.asarray(scores["nmi"]).tolist(),
                                                          "active": np.asarray(scores["active_latents"]).tolist()},
                                                         indent=1))
        if figures:
            write_figures(model, data, indices, reps, scores, out_dir, step, device, channels_last, traversal_values)
    model.train(was_training)
    return metrics


@torch.no_grad()
def write_figures(model, data, indices, reps, scores, out_dir: Path, step: int, device, channels_last,
                  traversal_values: int) -> None:
    viz.save_nmi_heatmap(scores["nmi"], scores["active_latents"], out_dir / "nmi.png",
                         factor_names=data.factor_names,
                         title=f"step {step}: InfoM {scores['infom']:.2f}  InfoC {scores['infoc']:.2f}")
    x = to_input(data.images[indices[:16]], device, channels_last)
    recon = torch.sigmoid(model(x).logits).float().cpu().numpy()
    pair = np.stack([viz.to_uint8(x.cpu().numpy()), viz.to_uint8(recon)])
    viz.save_grid(pair, out_dir / "reconstructions.png")
    if getattr(model.latent, "traversable", True) and getattr(model, "encoder_traversals", True):
        viz.save_grid(traversal_images(model, x, reps, traversal_values), out_dir / "traversals.png")
