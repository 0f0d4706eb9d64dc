"""Evaluation of any registered model on a fixed evaluation set: metrics, figures, codebook usage.

`evaluate` is what training calls at every evaluation step; `evaluate_run` is `latentquant eval` (a saved
checkpoint, the whole metric suite); `latent_usage` is the report's codebook analysis. Every figure comes
from the model's hooks (`traversal_start`, `samples`) and its latent module's `sweep`, so every model gets
the same figures from training and from `latentquant eval`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from . import viz
from .config import Config, DataConfig, EvalConfig, check_eval_choices
from .data import GroundTruthData
from .errors import UserError
from .metrics import infomec, psnr
from .metrics.factorvae import factorvae_score
from .metrics.protocols import Protocol, get_protocol, warn_factorvae_pruning
from .metrics.suite import array_metrics
from .metrics.unsupervised import unsupervised_scores
from .metrics.usage import codebook_usage
from .models import LatentModel
from .modules.latents import LatentOutput

FIGURE_SEED = 0  # samples and traversals start from the same prior draws at every evaluation
SUPERVISED_SKIPPED = "no factor labels: InfoMEC, DCI, MIG, SAP, DCI-ES and the FactorVAE score need them (skipped)"


def to_input(images: np.ndarray, device: torch.device | str = "cpu", channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, C, H, W) in [0, 1] on the device; the conversion runs there."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory_format)


def _batches(images: Any, indices: np.ndarray | None, batch_size: int, device: torch.device | str,
             channels_last: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
    """(batch length, model input) over images[indices] (or all of `images`), `batch_size` at a time."""
    n = len(images) if indices is None else len(indices)
    for start in range(0, n, batch_size):
        chunk = images[start : start + batch_size] if indices is None else images[indices[start : start + batch_size]]
        yield len(chunk), to_input(chunk, device, channels_last)


def protocol_representation(latent: LatentOutput, protocol: Protocol | None, generator: torch.Generator | None
                            ) -> torch.Tensor:
    """What the metrics see under ``protocol``: code indices or a posterior sample where it asks for them and
    the latent has them, else the latent's own representation (quantized values, posterior mean)."""
    if protocol is not None and protocol.codes == "indices" and latent.indices is not None:
        return latent.indices.float().cpu()
    if protocol is not None and protocol.representation == "sample" and latent.scale is not None:
        mean, scale = latent.representation.float().cpu(), latent.scale.float().cpu()
        return mean + scale * torch.randn(mean.shape, generator=generator)
    return latent.representation.float().cpu()


@torch.no_grad()
def encode_dataset(model: LatentModel, data: GroundTruthData, indices: np.ndarray, batch_size: int,
                   device: torch.device | str, channels_last: bool = False, protocol: Protocol | None = None,
                   seed: int = 0) -> tuple[np.ndarray, float, dict[str, float]]:
    """Representations (as ``protocol`` defines them; posterior samples drawn from ``seed``), mean per-image
    reconstruction PSNR and mean val/* terms over `indices`."""
    reps, psnrs, sums, count = [], [], {}, 0
    generator = torch.Generator().manual_seed(seed)
    for n, x in _batches(data.images, indices, batch_size, device, channels_last):
        out = model(x)
        reps.append(protocol_representation(out.latent, protocol, generator))
        recon = torch.sigmoid(out.logits).float()
        psnrs.append(psnr(x.cpu().numpy(), recon.cpu().numpy()) * n)
        for name, value in model.eval_terms(x, out).items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
        count += n
    losses = {name: total / count for name, total in sums.items()}
    return torch.cat(reps).numpy(), float(np.sum(psnrs)) / count, losses


@torch.no_grad()
def encode_images(model: LatentModel, images: Any, indices: np.ndarray | None = None, *, batch_size: int,
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray | None]:
    """(representations (N, D), codebook indices (N, D) or None for continuous latents)."""
    reps, codes = [], []
    for _, x in _batches(images, indices, batch_size, device):
        out: LatentOutput = model.encode(x)
        reps.append(out.representation.float().cpu())
        if out.indices is not None:
            codes.append(out.indices.cpu())
    return torch.cat(reps).numpy(), (torch.cat(codes).numpy() if codes else None)


class DatasetSampler:
    """The metrics' FactorSampler (`latentquant.metrics.sampling`) over the rows of a GroundTruthData, encoded
    by ``encode``.

    ``sample_fixed`` picks the value of the fixed factor from a uniformly random row, then draws rows
    uniformly (with replacement) among those with that value; ``sample_pairs`` draws each pair's first row
    uniformly and its second among the rows sharing the first's value. On a full factorial dataset (Shapes3D,
    dSprites, MPI3D) these are disentanglement_lib's samplers: the fixed value has its marginal distribution
    and the other factors are uniform. ``traverse`` needs every combination of factors to have an image and
    raises ``ValueError`` naming a missing one otherwise. ``encode`` receives uint8 images (n, H, W, C) and
    returns (n, D).
    """

    def __init__(self, data: GroundTruthData, encode: Callable[[np.ndarray], np.ndarray]) -> None:
        self.data = data
        self.encode = encode
        factors = np.asarray(data.factors)
        # For each factor: the rows sorted by its value, so each value's rows form one contiguous block.
        self._order = [np.argsort(factors[:, k], kind="stable") for k in range(factors.shape[1])]
        self._sorted = [factors[order, k] for k, order in enumerate(self._order)]
        self._factors = factors

    @property
    def num_factors(self) -> int:
        return self._factors.shape[1]

    def sample(self, n: int, rng: np.random.RandomState) -> np.ndarray:
        return self._encode(rng.randint(len(self._factors), size=n))

    def sample_fixed(self, factor: int, n: int, rng: np.random.RandomState) -> np.ndarray:
        order, column = self._order[factor], self._sorted[factor]
        value = self._factors[rng.randint(len(self._factors)), factor]
        lo, hi = np.searchsorted(column, value, side="left"), np.searchsorted(column, value, side="right")
        return self._encode(order[lo + rng.randint(hi - lo, size=n)])

    @property
    def factor_sizes(self) -> list[int]:
        return [int(size) for size in self.data.factor_sizes]

    def sample_labelled(self, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        rows = rng.randint(len(self._factors), size=n)
        return self._factors[rows], self._encode(rows)

    def sample_pairs(self, factor: int, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        order, column = self._order[factor], self._sorted[factor]
        first = rng.randint(len(self._factors), size=n)
        values = self._factors[first, factor]
        lo, hi = np.searchsorted(column, values, side="left"), np.searchsorted(column, values, side="right")
        second = order[lo + rng.randint(0, hi - lo)]
        latents = self._encode(np.concatenate([first, second]))  # one encoder call for both halves
        return latents[:n], latents[n:]

    def traverse(self, factor: int, rng: np.random.RandomState) -> np.ndarray:
        base = self._factors[rng.randint(len(self._factors))]
        grid = np.repeat(base[None, :], self.factor_sizes[factor], axis=0)
        grid[:, factor] = np.arange(self.factor_sizes[factor])
        return self._encode(self._rows_of(grid))

    def _rows_of(self, factors: np.ndarray) -> np.ndarray:
        """The row holding each factor combination (the first such row if several do)."""
        if not hasattr(self, "_codes"):
            # One mixed-radix code per row, sorted once: a combination's row is then a binary search away.
            codes = np.ravel_multi_index(self._factors.T, self.factor_sizes)
            self._code_order = np.argsort(codes, kind="stable")
            self._codes = codes[self._code_order]
        wanted = np.ravel_multi_index(factors.T, self.factor_sizes)
        where = np.minimum(np.searchsorted(self._codes, wanted), len(self._codes) - 1)
        missing = self._codes[where] != wanted
        if missing.any():
            raise ValueError(f"{self.data.name}: no image with factors {factors[np.argmax(missing)].tolist()}; "
                             "factor traversals need a full factorial dataset")
        return self._code_order[where]

    def _encode(self, rows: np.ndarray) -> np.ndarray:
        # HDF5 and memory-mapped stores need increasing row indices (and read fastest that way).
        unique, inverse = np.unique(rows, return_inverse=True)
        latents = np.asarray(self.encode(np.asarray(self.data.images[unique])))
        return latents[inverse.reshape(-1)]


def suite_metrics(model: LatentModel, data: GroundTruthData, reps: np.ndarray, sources: np.ndarray, *,
                  batch_size: int, device: torch.device | str, dci_predictor: str | None = None,
                  factorvae_votes: int = 10_000, on_warning: Callable[[str], None] | None = None,
                  protocol: str | Protocol = "qlae", nmi_floor: str = "none", seed: int = 0,
                  nmi: np.ndarray | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every other metric of the suite under ``protocol``: DCI, MIG, SAP, DCI-ES and the FactorVAE score.

    The array metrics see ``reps`` and ``sources`` (the evaluation set) under protocols that split the given
    set, and a fresh draw of the whole dataset (uniform, with replacement, from ``seed``) under those that
    draw fresh samples; InfoMEC is then measured on that draw too and returned beside the rest. The
    FactorVAE score always draws fresh samples, encoded by the model. ``nmi`` (K, D), the evaluation set's
    InfoMEC NMI, lets the score warn when its pruning drops an informative latent. ``progress`` is called with
    each stage's name as it starts.
    """
    chosen = get_protocol(protocol)
    fresh = chosen.sampling == "fresh"
    stage = progress or (lambda name: None)
    with _recorded_warnings(on_warning):
        if fresh:
            stage(f"encoding a fresh draw of {sum(chosen.fresh_split):,} images")
            rows = np.random.default_rng(seed).integers(len(data), size=sum(chosen.fresh_split))
            reps, _, _ = encode_dataset(model, data, rows, batch_size, device, protocol=chosen, seed=seed)
            sources = data.values(rows)
        scores = array_metrics(sources, reps, discrete_latents=model.discrete_latents, dci_predictor=dci_predictor,
                               protocol=chosen, nmi_floor=nmi_floor, fresh=fresh, progress=progress)
        scores = {k: v for k, v in scores.items() if fresh or k in ("infom_gap", "infoc_gap")
                  or not k.startswith("info")}
        scores.pop("active_latents", None)
        if factorvae_votes > 0:
            generator = torch.Generator().manual_seed(seed)

            def encode(images: np.ndarray) -> np.ndarray:
                out = encode_images_raw(model, images, batch_size=batch_size, device=device)
                return torch.cat([protocol_representation(o, chosen, generator) for o in out]).numpy()

            stage(f"FactorVAE score ({factorvae_votes:,} votes)")
            sampler = DatasetSampler(data, encode)
            votes = max(factorvae_votes // 2, 1)
            result = factorvae_score(sampler, n_train=factorvae_votes, n_eval=votes,
                                     prune_threshold=chosen.factorvae_prune)
            scores["factorvae_score"] = result["score"]
            if nmi is not None:
                warn_factorvae_pruning(result["active_latents"], nmi, chosen)
    scores["dci_predictor"] = dci_predictor or chosen.dci_predictor
    scores["protocol"] = chosen.name
    return scores


@torch.no_grad()
def encode_images_raw(model: LatentModel, images: Any, *, batch_size: int, device: torch.device | str = "cpu"
                      ) -> list[LatentOutput]:
    """The latent module's outputs for ``images``, a batch at a time."""
    return [model.encode(x) for _, x in _batches(images, None, batch_size, device)]


class _recorded_warnings:
    """Collect the metrics' warnings (degenerate cases early in training are expected) and report each once."""

    def __init__(self, on_warning: Callable[[str], None] | None) -> None:
        self.on_warning = on_warning
        self._ctx = warnings.catch_warnings(record=True)

    def __enter__(self) -> None:
        self.caught = self._ctx.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: Any) -> None:
        self._ctx.__exit__(*exc)
        if self.on_warning is not None:
            for message in dict.fromkeys(str(w.message) for w in self.caught):
                self.on_warning(message)


def evaluate(model: LatentModel, data: GroundTruthData, indices: np.ndarray, cfg: EvalConfig, *, step: int,
             out_dir: Path | None, device: torch.device | str = "cpu", channels_last: bool = False,
             suite: bool = False, on_warning: Callable[[str], None] | None = None,
             progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """All metrics for the model on `data.images[indices]`; writes `metrics.json` and figures to out_dir.

    InfoMEC and PSNR always (they are what training logs); with `suite`, every other metric of the suite too.
    The metrics' warnings go to `on_warning` once each (default: dropped); `progress` is called with each
    stage's name as it starts (default: nothing is shown).
    """
    was_training = model.training
    model.eval()
    stage = progress or (lambda name: None)
    try:
        protocol = get_protocol(cfg.protocol)
        stage(f"encoding {len(indices):,} images")
        reps, psnrs, losses = encode_dataset(model, data, indices, cfg.batch_size, device, channels_last,
                                             protocol=protocol, seed=step)
        if not data.labelled:
            metrics, scores = _unlabelled_metrics(reps, step, psnrs, losses, protocol.name)
            if out_dir is not None:
                _write_metrics(out_dir, metrics, scores)
                if cfg.figures:
                    stage("figures")
                    write_figures(model, data, indices, reps, scores, out_dir, step=step, device=device,
                                  channels_last=channels_last, traversal_values=cfg.traversal_values)
            return metrics
        sources = data.values(indices)
        stage("InfoMEC")
        with _recorded_warnings(on_warning):
            try:
                scores = infomec(sources, reps, discrete_latents=model.discrete_latents,
                                 activity=protocol.infomec_activity, n_neighbors=protocol.infomec_neighbors,
                                 infoe_max_iter=protocol.infoe_max_iter, nmi_floor=cfg.nmi_floor)
            except ValueError as e:
                # Every latent constant (your own network at initialisation, say): InfoMEC is undefined, which
                # is a score of this step (NaN, logged as null), not a reason to stop training.
                if not str(e).startswith("no active latent"):
                    raise
                warnings.warn(f"step {step}: InfoMEC undefined, {e}", UserWarning, stacklevel=2)
                nan = float("nan")
                scores = {"infom": nan, "infoe": nan, "infoc": nan, "nmi": np.zeros((data.num_factors, reps.shape[1])),
                          "active_latents": np.zeros(reps.shape[1], dtype=bool)}
        metrics: dict[str, Any] = {
            "step": step,
            "infom": float(scores["infom"]),
            "infoe": float(scores["infoe"]),
            "infoc": float(scores["infoc"]),
            "psnr": psnrs,
            "active_latents": int(np.sum(scores["active_latents"])),
            "protocol": protocol.name,
            **{f"val/{k}": v for k, v in losses.items()},
        }
        if suite and not metrics["active_latents"]:
            # A collapsed representation (every latent constant) has no DCI, MIG or FactorVAE score either:
            # the run's result is that, not a crash after hours of training.
            warnings.warn(f"step {step}: the metric suite is undefined too (no active latent); skipped",
                          UserWarning, stacklevel=2)
        elif suite:
            metrics.update(suite_metrics(model, data, reps, sources, batch_size=cfg.batch_size, device=device,
                                         dci_predictor=cfg.dci_predictor, factorvae_votes=cfg.factorvae_votes,
                                         on_warning=on_warning, protocol=protocol, nmi_floor=cfg.nmi_floor,
                                         seed=step, nmi=scores["nmi"], progress=progress))
        if out_dir is not None:
            _write_metrics(out_dir, metrics, scores)
            if cfg.figures:
                stage("figures")
                write_figures(model, data, indices, reps, scores, out_dir, step=step, device=device,
                              channels_last=channels_last, traversal_values=cfg.traversal_values)
    finally:
        model.train(was_training)
    return metrics


def _unlabelled_metrics(reps: np.ndarray, step: int, psnrs: float, losses: dict[str, float], protocol: str
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Without labels: PSNR, the val/* terms and the unsupervised scores (how independent the latents are)."""
    metrics: dict[str, Any] = {"step": step, "psnr": psnrs, "protocol": protocol}
    try:
        unsupervised = unsupervised_scores(reps)
        metrics.update({k: float(v) for k, v in unsupervised.items() if isinstance(v, float)})
    except ValueError as e:  # one latent, say: there is no pair to be independent of
        metrics["unsupervised"] = f"skipped: {e}"
    metrics["supervised"] = SUPERVISED_SKIPPED
    metrics.update({f"val/{k}": v for k, v in losses.items()})
    return metrics, {"nmi": np.zeros((0, reps.shape[1])), "active_latents": np.var(reps, axis=0) > 0}


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _write_metrics(out_dir: Path, metrics: dict[str, Any], scores: dict[str, Any]) -> None:
    from .fsio import atomic_write_text

    if out_dir.is_symlink():
        raise UserError(f"{out_dir} is a symbolic link: refusing to write an evaluation through it")
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {**{k: _clean(v) for k, v in metrics.items()}, "nmi": np.asarray(scores["nmi"]).tolist(),
              "active": np.asarray(scores["active_latents"]).tolist()}
    atomic_write_text(out_dir / "metrics.json", json.dumps(record, indent=1, allow_nan=False))


@torch.no_grad()
def traversal_images(model: LatentModel, start: torch.Tensor, representations: np.ndarray,
                     num_values: int) -> np.ndarray | None:
    """One row per latent: decode `start` (one latent vector) while sweeping that latent over its module's
    `sweep` values; None if no latent has a scalar axis (VQ slots)."""
    z = start[:1]
    rows = []
    for j in range(z.shape[1]):
        sweep = model.latent.sweep(j, representations, num_values)
        if sweep is None:
            return None
        zs = z.repeat(len(sweep), 1)
        zs[:, j] = sweep.to(zs.device, zs.dtype)
        rows.append(torch.sigmoid(model.decode(zs)).float().cpu().numpy())
    width = max(len(r) for r in rows)
    c, h, w = rows[0].shape[1:]
    grid = np.ones((len(rows), width, c, h, w), dtype=np.float32)
    for j, r in enumerate(rows):
        grid[j, : len(r)] = r
    return viz.to_uint8(grid)


@torch.no_grad()
def write_figures(model: LatentModel, data: GroundTruthData, indices: np.ndarray, reps: np.ndarray,
                  scores: dict[str, Any], out_dir: Path, *, step: int, device: torch.device | str,
                  channels_last: bool = False, traversal_values: int = 10) -> list[str]:
    """nmi.png (labelled data), reconstructions.png, traversals.png (if the latents can be swept), samples.png (if
    the model has a prior); returns the names written."""
    written = []
    if data.labelled:  # without labels there is no factor axis to draw
        viz.save_nmi_heatmap(scores["nmi"], scores["active_latents"], out_dir / "nmi.png",
                             factor_names=data.factor_names,
                             title=f"step {step}: InfoM {scores['infom']:.2f}  InfoC {scores['infoc']:.2f}")
        written.append("nmi.png")
    x = to_input(data.images[indices[:16]], device, channels_last)
    recon = torch.sigmoid(model(x).logits).float().cpu().numpy()
    viz.save_grid(np.stack([viz.to_uint8(x.cpu().numpy()), viz.to_uint8(recon)]), out_dir / "reconstructions.png")
    written.append("reconstructions.png")
    start = model.traversal_start(x, torch.Generator().manual_seed(FIGURE_SEED))
    grid = traversal_images(model, start, reps, traversal_values)
    if grid is not None:
        viz.save_grid(grid, out_dir / "traversals.png")
        written.append("traversals.png")
    samples = model.samples(16, torch.Generator().manual_seed(FIGURE_SEED))
    if samples is not None:
        images = viz.to_uint8(samples.float().cpu().numpy())
        viz.save_grid(images.reshape(2, len(images) // 2, *images.shape[1:]), out_dir / "samples.png")
        written.append("samples.png")
    return written


# --- codebook usage (the report) ------------------------------------------------------------------------------


@dataclass
class LatentUsage:
    """How a model's latents are used on a set of images."""

    kind: Literal["scalar", "vector", "continuous"]
    representations: np.ndarray  # (N, D): what the metrics see (codebook values, VQ codes, VAE means, ...)
    counts: np.ndarray | None = None  # (D, max K): images whose latent j takes codebook index k
    num_values: list[int] | None = None  # codebook size of each latent
    codebooks: list[np.ndarray] | None = None  # scalar quantizers: the values of each latent's codebook


def latent_usage(model: LatentModel, data: GroundTruthData, indices: np.ndarray, *, batch_size: int = 500,
                 device: torch.device | str = "cpu") -> LatentUsage:
    """Encode data.images[indices] and count the codebook usage of every latent (if the latents are quantized)."""
    was_training = model.training
    model.eval()
    try:
        reps, codes = encode_images(model, data.images, indices, batch_size=batch_size, device=device)
    finally:
        model.train(was_training)
    sizes = model.latent.codebook_sizes()
    if codes is None or sizes is None:
        return LatentUsage("continuous", reps)
    values = model.latent.codebook_values()
    if values is not None:  # scalar quantizers: latent j's index k stands for one number
        books = [v.float().cpu().numpy() for v in values]
        return LatentUsage("scalar", reps, codebook_usage(codes, sizes), sizes, books)
    return LatentUsage("vector", reps, codebook_usage(codes, sizes), sizes)


# --- a saved run ----------------------------------------------------------------------------------------------


def load_run_model(run_dir: str | Path, cfg: Config | None = None, step: int | None = None,
                   warn: Callable[[str], None] | None = None, *, encoder: Any = None, decoder: Any = None
                   ) -> tuple[GroundTruthData, LatentModel, dict[str, Any]]:
    """The run's data, and its model on `run_device` with the weights of checkpoint `step` (the latest intact one
    if None, after `warn`ing about each bad newer one), in eval mode; the checkpoint's state comes third.
    `encoder` / `decoder`: the run's own networks (build.Network), when it was trained with them."""
    from .build import load_data, make_model, run_device, set_threads
    from .checkpoint import load_checkpoint
    from .runs import RunDir

    run = RunDir(run_dir)
    cfg = cfg or run.read_config()
    set_threads(cfg.train.threads)
    data = load_data(cfg)
    model = make_model(cfg, data, encoder, decoder).to(run_device(cfg))
    meta = load_checkpoint(run.checkpoints, model, step=step, fallback=step is None,
                           warn=warn or (lambda m: warnings.warn(m, stacklevel=3)))
    model.eval()
    return data, model, meta


def eval_indices(n: int, num_eval: int, seed: int) -> np.ndarray:
    """A fixed pseudo-random evaluation subset, drawn from the whole set as the reference's is."""
    return np.random.default_rng(seed).choice(n, size=min(num_eval, n), replace=False)


def data_split(n: int, cfg: DataConfig) -> tuple[np.ndarray | None, np.ndarray]:
    """(training rows, evaluation rows) of a dataset of `n` images.

    `data.eval_fraction` 0: training draws from every image and the evaluation set is a seeded subset of all of
    them (the reference's protocol; training rows None). Otherwise that fraction of the images, drawn from
    `data.split_seed`, is held out: training never sees it, and the evaluation set is (up to `data.num_eval`
    of) it. Both row lists are disjoint; the training rows are sorted.
    """
    if cfg.eval_fraction == 0:
        return None, eval_indices(n, cfg.num_eval, cfg.seed)
    held = int(round(n * cfg.eval_fraction))
    if held < 2 or held >= n:
        raise UserError(f"data.eval_fraction={cfg.eval_fraction} of {n} images holds out {held}; evaluation needs "
                        "at least 2 and training at least 1")
    order = np.random.default_rng(cfg.split_seed).permutation(n)
    held_out, train_rows = order[:held], np.sort(order[held:])
    return train_rows, np.sort(held_out)[eval_indices(held, cfg.num_eval, cfg.seed)]


def evaluate_run(run_dir: str | Path, step: int | None = None, *, dci_predictor: str | None = None,
                 factorvae_votes: int = 10_000, on_warning: Callable[[str], None] | None = None,
                 protocol: str | None = None, nmi_floor: str | None = None, encoder: Any = None,
                 decoder: Any = None, progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Path]:
    """Every metric and every figure for a saved checkpoint of a run (the latest intact one unless `step` is given),
    on its evaluation set; written to eval/step_N/. ``protocol``, ``nmi_floor`` and ``dci_predictor`` default
    to the run's ``eval.*`` settings (the DCI learner to the protocol's). ``encoder`` / ``decoder``: the run's own
    networks, if it was trained with them. ``progress`` is called with each stage's name as it starts."""
    from dataclasses import replace

    from .build import run_device
    from .runs import RunDir

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise UserError(f"no run directory {run.path}")
    cfg = run.read_config()
    if factorvae_votes < 0:
        raise UserError(f"factorvae_votes must be 0 (skip) or more, got {factorvae_votes}")
    eval_cfg = replace(cfg.eval, factorvae_votes=factorvae_votes, dci_predictor=dci_predictor or cfg.eval.dci_predictor,
                       protocol=protocol or cfg.eval.protocol, nmi_floor=nmi_floor or cfg.eval.nmi_floor)
    try:
        check_eval_choices(eval_cfg)
    except UserError as e:
        raise UserError(str(e).removeprefix("eval.")) from None
    run.check_writable()  # before minutes of metrics, not after
    from .lock import busy_message, lock_holder

    holder = lock_holder(run.path)
    if holder is not None and on_warning is not None:
        on_warning(f"{busy_message(run.path, holder)}: evaluating its latest checkpoint as it is now")
    data, model, meta = load_run_model(run.path, cfg, step, warn=on_warning, encoder=encoder, decoder=decoder)
    out_dir = run.eval_dir(meta["step"])
    metrics = evaluate(model, data, data_split(len(data), cfg.data)[1], eval_cfg,
                       step=meta["step"], out_dir=out_dir, device=run_device(cfg),
                       channels_last=cfg.train.channels_last, suite=True, on_warning=on_warning,
                       progress=progress)
    return metrics, out_dir
