"""Your own encoder and decoder, trained by latentquant's loop: same run directory, checkpoints, resume, metrics.

    python examples/own_networks.py --work runs/own-networks
    python examples/own_networks.py --work /tmp/x --steps 4 --size 16       # a smoke test
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

import latentquant as lq


class Encoder(nn.Module):
    """(B, C, S, S) images in [0, 1] -> (B, out_features): whatever the latent module takes (num_inputs)."""

    def __init__(self, channels: int, size: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """(B, num_latents) -> logits (B, C, S, S); latentquant applies the sigmoid and the cross-entropy."""

    def __init__(self, channels: int, size: int, num_latents: int) -> None:
        super().__init__()
        self.size = size
        self.fc = nn.Sequential(nn.Linear(num_latents, 32 * (size // 4) ** 2), nn.ReLU())
        self.net = nn.Sequential(nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(16, channels, 4, 2, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(len(z), 32, self.size // 4, self.size // 4))


def blobs(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs at grid positions: (n, size, size) floats in [0, 1] and their (x, y) labels."""
    rng = np.random.default_rng(seed)
    xy = rng.integers(0, 8, size=(n, 2))
    centre = (xy + 0.5) * size / 8
    grid = np.arange(size) + 0.5
    d = (grid[None, None, :] - centre[:, 0, None, None]) ** 2 + (grid[None, :, None] - centre[:, 1, None, None]) ** 2
    return np.exp(-d / (size / 6) ** 2), xy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--size", type=int, default=32, help="image side, a multiple of 4")
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    images, labels = blobs(args.images, args.size)
    np.savez(work / "blobs.npz", images=images, xy=labels)  # float images in [0, 1] and their labels

    latents = 4
    cfg = lq.load_config(["model=qlae", f"model.num_latents={latents}", "data=arrays", f"data.path={work}/blobs.npz",
                          "data.key=images", "data.factors_key=xy", f"data.image_size={args.size}",
                          f"train.steps={args.steps}", "train.batch_size=32", "data.num_eval=500",
                          f"train.eval_every={max(args.steps, 1)}", "progress=false", f"run_dir={work / 'run'}"])

    # QLAE's latent module takes one number per latent (num_inputs = num_latents); a VAE's would take two.
    # Functions, not modules: latentquant calls them after seeding, so the initialisation is the run's.
    def encoder() -> Encoder:
        return Encoder(1, args.size, latents)

    def decoder() -> Decoder:
        return Decoder(1, args.size, latents)

    run_dir = work / "run"
    if not (run_dir / "config.yaml").exists():
        cfg.train.steps = max(args.steps // 2, 1)  # half now; the rest after a resume, with the same networks
        lq.fit(cfg, encoder=encoder, decoder=decoder)
    metrics = lq.fit(lq.resume_config(run_dir, [f"train.steps={args.steps}"]), encoder=encoder, decoder=decoder)
    print(f"step {args.steps}: InfoM {metrics['infom']:.3f}  InfoC {metrics['infoc']:.3f}  PSNR {metrics['psnr']:.2f}")

    run = lq.load_run(run_dir, encoder=encoder, decoder=decoder)   # model, config, data, split, step
    codes = run.encode()["codes"]                                          # (N, latents) integer codes
    print(f"checkpoint step {run.step}; codes of the evaluation images: {codes.shape}, "
          f"{len(np.unique(codes[:, 0]))} values used by latent 0")


if __name__ == "__main__":
    main()
