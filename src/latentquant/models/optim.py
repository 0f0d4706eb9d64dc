"""The reference's optimizer policy: two parameter partitions, AdamW, element-wise clipping.

'regularized' (weights, norm scales, the decoder constant): decoupled weight decay and gradient clipping;
'unregularized' (biases and the whole latent module): neither. Each model's `configure_optimizers` builds
its optimizers from these helpers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def param_groups(model: nn.Module, weight_decay: float, only: Sequence[str] | None = None) -> list[dict]:
    """The two partitions; `only` restricts both to the named submodules (a GAN's two optimizers each own a part)."""
    no_decay = model.no_decay_parameter_names()
    prefixes = None if only is None else tuple(f"{m}." for m in only)
    decayed, plain = [], []
    for name, p in model.named_parameters():
        if prefixes is not None and not name.startswith(prefixes):
            continue
        if p.requires_grad:
            (plain if name in no_decay else decayed).append(p)
    return [
        {"params": decayed, "weight_decay": weight_decay, "name": "regularized", "clip": True},
        {"params": plain, "weight_decay": 0.0, "name": "unregularized", "clip": False},
    ]


def make_optimizer(
    model: nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
    fused: bool | None = None, only: Sequence[str] | None = None,
) -> torch.optim.Optimizer:
    """AdamW (decoupled decay) on the regularized group; AdamW with zero decay is exactly Adam.

    `fused` runs the whole update as one kernel per group (CPU and CUDA); None keeps PyTorch's default.
    """
    return torch.optim.AdamW(param_groups(model, weight_decay, only), lr=lr, betas=betas, eps=1e-8, fused=fused)


def clip_gradients(optimizer: torch.optim.Optimizer, clip: float) -> None:
    """Element-wise gradient clamp to [-clip, clip], on the regularized group only (optax.clip)."""
    grads = [p.grad for g in optimizer.param_groups if g.get("clip") for p in g["params"] if p.grad is not None]
    if grads and clip > 0:
        torch._foreach_clamp_min_(grads, -clip)
        torch._foreach_clamp_max_(grads, clip)


def step_on(optimizer: torch.optim.Optimizer, loss: Tensor, clip: float) -> None:
    """One update of `optimizer`'s parameters on `loss`: zero, backward, clip, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    clip_gradients(optimizer, clip)
    optimizer.step()
