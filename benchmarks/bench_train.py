"""Training throughput (images/s) of a full training step (`model.train_step`: forward, backward, clip, AdamW).

Measures, in one run on this machine: the paper architecture at batch 32 and 128, first as a plain eager
PyTorch step (NCHW, default settings: the in-run baseline), then with latentquant's fast settings; and
the CPU preset. Prints images/s, the ratio to the in-run baseline and to the authors' JAX implementation
measured on the 2-core reference machine (6.9 images/s at batch 32, 5.7 at batch 128), and each step's
achieved GFLOP/s (the convolutions' and matrix products' FLOPs, forward and backward, as
`torch.utils.flop_counter` counts them) next to a float32 matrix multiply measured first in the same run.

    python benchmarks/bench_train.py [--steps 4] [--batches 32,128] [--threads 0] [--no-compile] [--model qlae]
    python benchmarks/bench_train.py --batches "" --layers   # the CPU preset only, and each of its convolutions
    python benchmarks/bench_train.py --batches "" --set model.widths=[32,64,128]   # the preset, changed
    python benchmarks/bench_train.py --batches "" --dense 1024 --set train.batch_size=128   # fully connected

`--dense W` swaps the preset's convolutional pair for fully connected networks (two hidden layers of W) through
the own-networks hook: the step whose products are large enough to approach the matrix multiply's rate.

`--model` takes any registered model (a GAN's step is a critic step, and every fifth a generator step too).
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

from latentquant import config
from latentquant.errors import UserError
from latentquant.models import ModelParts, build_model, get_spec
from latentquant.modules.networks import repeating_stack

JAX_REFERENCE = {32: 6.9, 128: 5.7}  # images/s, idle 2-core machine, after 1-2 min of XLA compilation


def cpu_preset(dataset_size: int | None = None, overrides: list[str] | None = None) -> tuple[ModelParts, int]:
    """The CPU preset's networks and image size (the default run's), and its batch size, with `overrides`
    (`key=value`, as on the command line) applied."""
    cpu = config.resolve(overrides or [])
    stack = repeating_stack(cpu.model.widths, cpu.model.blocks_per_stage)
    parts = ModelParts(image_size=cpu.data.image_size, stack=stack, dense=tuple(cpu.model.dense),
                       dataset_size=dataset_size)
    return parts, cpu.train.batch_size


class DenseEncoder(nn.Module):
    """Images -> flatten -> `width` ReLU `width` ReLU -> `out` numbers: the encoder of `--dense`."""

    def __init__(self, pixels: int, width: int, out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(pixels, width), nn.ReLU(), nn.Linear(width, width),
                                 nn.ReLU(), nn.Linear(width, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DenseDecoder(nn.Module):
    """Latents -> `width` ReLU `width` ReLU -> logits of a (channels, side, side) image: `--dense`'s decoder."""

    def __init__(self, latents: int, width: int, channels: int, side: int) -> None:
        super().__init__()
        self.shape = (channels, side, side)
        self.net = nn.Sequential(nn.Linear(latents, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                 nn.Linear(width, channels * side * side))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.shape)


def dense_pair(parts: ModelParts, latents: int, width: int) -> dict[str, nn.Module]:
    side, c = parts.image_size, parts.in_channels
    return {"encoder": DenseEncoder(c * side * side, width, latents), "decoder": DenseDecoder(latents, width, c, side)}


def make_step(parts: ModelParts, batch: int, *, channels_last: bool, compile_: bool, fused: bool | None,
              model_name: str = "qlae", terms: dict[str, float] | None = None, dense: int = 0):
    """The training loop's own step (model.train_step) on one fixed random batch; `terms` are composable terms
    added to the model (model.klm, model.nhp, model.tc); `dense` > 0: fully connected networks of that width."""
    torch.manual_seed(0)
    networks = dense_pair(parts, 12, dense) if dense else {}
    model = build_model(model_name, parts, 12, **networks, **(terms or {}))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optimizers = model.configure_optimizers(lr=1e-3, weight_decay=get_spec(model_name).weight_decay, fused=fused)
    if compile_:
        # From scratch, as in a run: after an earlier variant's graph, dynamo would recompile this one with
        # dynamic strides, a slower graph than any run of `latentquant train` gets.
        torch._dynamo.reset()
        model.compile_for_training()
    x = torch.rand(batch, parts.in_channels, parts.image_size, parts.image_size).contiguous(memory_format=fmt)
    rng = torch.Generator().manual_seed(0)
    counter = iter(range(10**9))

    def step() -> None:
        model.train_step(x, next(counter), optimizers, clip=1.0, rng=rng)

    return step


def matmul_gflops(repeats: int = 3) -> float:
    """The best float32 square matrix multiply rate over a few sizes, with the current threads: the machine's
    own ceiling for the step's convolutions and products."""
    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        reps = max(2, int(2e10 / (2 * n**3)))
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(reps):
                a @ b
            best = max(best, 2 * n**3 * reps / (time.perf_counter() - start) / 1e9)
    return best


def step_flops(step) -> float:
    """FLOPs of one training step (forward, backward), counted on one call."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def conv_layers(parts: ModelParts, batch: int) -> list[tuple[str, torch.nn.Module, tuple[int, ...], bool]]:
    """(label, layer, input shape, needs input gradient) for every convolution of the built-in pair."""
    from latentquant.modules.networks import ImageEncoder, StyleDecoder

    size, layers = parts.image_size, []
    encoder = ImageEncoder(12, image_size=size, stack=parts.stack, dense=parts.dense)
    channels = parts.in_channels
    for i, block in enumerate(encoder.trunk):
        conv = block.conv
        layers.append((f"encoder {conv.in_channels}->{conv.out_channels} @{size}", conv,
                       (batch, channels, size, size), i > 0))
        channels, size = conv.out_channels, size // conv.stride[0]
    decoder = StyleDecoder(12, image_size=parts.image_size, stack=parts.stack, mapping=parts.dense)
    for block in decoder.blocks:
        conv = block.conv
        layers.append((f"decoder T {conv.in_channels}->{conv.out_channels} @{size}", conv,
                       (batch, conv.in_channels, size, size), True))
        size *= conv.stride[0]
    layers.append((f"output {decoder.out.in_channels}->{decoder.out.out_channels} @{size}", decoder.out,
                   (batch, decoder.out.in_channels, size, size), True))
    return layers


def gemm_shapes(layer: torch.nn.Module, shape: tuple[int, ...], input_grad: bool) -> list[tuple[int, int, int]]:
    """(M, K, N) of the matrix products a convolution lowered to im2col / col2im runs, forward and backward: the
    same FLOPs as the convolution, with the data movement left out, so their rate bounds any such lowering."""
    k = layer.kernel_size[0] * layer.kernel_size[1]
    with torch.no_grad():
        out = layer(torch.zeros(shape))
    n, cin, cout = shape[0], layer.in_channels, layer.out_channels
    if isinstance(layer, torch.nn.ConvTranspose2d):  # a conv's backward: pixels of the input times (Cout k k)
        pixels = n * shape[2] * shape[3]
        forward, grad_in, grad_w = (pixels, cin, cout * k), (pixels, cout * k, cin), (cin, pixels, cout * k)
    else:
        pixels = n * out.shape[2] * out.shape[3]
        forward, grad_in, grad_w = (pixels, cin * k, cout), (pixels, cout, cin * k), (cout, pixels, cin * k)
    return [forward, *([grad_in] if input_grad else []), grad_w]


def gemm_seconds(shapes: list[tuple[int, int, int]], reps: int) -> float:
    """Best-of-3 time of one pass over the products (fresh operands; the result is written, as a layer would)."""
    pairs = [(torch.randn(m, kk), torch.randn(kk, nn)) for m, kk, nn in shapes]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(reps):
            for a, b in pairs:
                torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def layer_table(parts: ModelParts, batch: int, matmul: float, reps: int = 20) -> None:
    """Each convolution's forward + backward GFLOP/s in both memory formats, and the rate of the matrix products
    of its own shapes (an im2col lowering's ceiling): where the step loses its rate, and what any convolution
    code could get back at these shapes."""
    print(f"{'convolution':<28} {'NCHW GFLOP/s':>13} {'channels_last':>14} {'ms (best)':>10} {'its GEMMs':>14}")
    conv_ms = gemm_ms = total_flops = 0.0
    for label, layer, shape, input_grad in conv_layers(parts, batch):
        rates = []
        for fmt in (torch.contiguous_format, torch.channels_last):
            layer = layer.to(memory_format=fmt)
            x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_(input_grad)

            def once(layer: torch.nn.Module = layer, x: torch.Tensor = x) -> None:
                y = layer(x)
                y.backward(torch.ones_like(y))

            flops = step_flops(once)
            once()
            start = time.perf_counter()
            for _ in range(reps):
                once()
            seconds = (time.perf_counter() - start) / reps
            rates.append((flops / seconds / 1e9, seconds))
        best = min(r[1] for r in rates) * 1e3
        shapes = gemm_shapes(layer, shape, input_grad)
        gemm_flops = sum(2 * m * kk * nn for m, kk, nn in shapes)
        gemm = gemm_flops / gemm_seconds(shapes, reps) / 1e9
        conv_ms, gemm_ms, total_flops = conv_ms + best, gemm_ms + gemm_flops / gemm / 1e6, total_flops + gemm_flops
        print(f"{label:<28} {rates[0][0]:>8.1f} {rates[0][0] / matmul:>4.0%} {rates[1][0]:>9.1f} "
              f"{rates[1][0] / matmul:>4.0%} {best:>10.2f} {gemm:>8.1f} {gemm / matmul:>4.0%}")
    print(f"{'all convolutions':<28} {total_flops / conv_ms / 1e6:>8.1f} {total_flops / conv_ms / 1e6 / matmul:>4.0%}"
          f" (each in its faster format) {conv_ms:>10.2f} {total_flops / gemm_ms / 1e6:>8.1f} "
          f"{total_flops / gemm_ms / 1e6 / matmul:>4.0%} ({gemm_ms:.2f} ms)")


def images_per_second(step, batch: int, steps: int, warmup: int = 1, repeats: int = 1) -> float:
    """The median rate of `repeats` timings of `steps` steps each (one timing swings 10-20 % on a shared VM)."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - start))
    return sorted(rates)[len(rates) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batches", default="32,128")
    parser.add_argument("--threads", type=int, default=0, help="0: all cores")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (about a minute to compile)")
    parser.add_argument("--model", default="qlae", help="any registered model (default qlae)")
    parser.add_argument("--layers", action="store_true", help="also time each convolution of the CPU preset")
    parser.add_argument("--dense", type=int, default=0, metavar="W",
                        help="time the CPU preset with fully connected networks of width W instead")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override applied to the CPU preset (repeatable), e.g. model.widths=[32,64,128]")
    args = parser.parse_args()
    if args.dense and args.layers:
        parser.error("--layers times the convolutions, which --dense replaces: give one of them")
    try:  # a bad override is the user's: one line and exit 2, before anything is timed
        parts, batch = cpu_preset(overrides=args.overrides)
    except UserError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    variants = [("eager NCHW (baseline)", dict(channels_last=False, compile_=False, fused=False)),
                ("channels_last + fused AdamW", dict(channels_last=True, compile_=False, fused=True))]
    if not args.no_compile:
        variants.append(("torch.compile + fused AdamW", dict(channels_last=False, compile_=True, fused=True)))
        variants.append(("compile + channels_last + fused", dict(channels_last=True, compile_=True, fused=True)))
        # What `latentquant train` runs with the presets' train.fused: false (PyTorch's per-tensor AdamW on CPU).
        variants.append(("compiled, channels_last, unfused", dict(channels_last=True, compile_=True, fused=None)))
    matmul = matmul_gflops()
    print(f"float32 matrix multiply: {matmul:.1f} GFLOP/s")
    print(f"{'model':<12} {'batch':>5}  {'variant':<31} {'images/s':>9} {'vs baseline':>11} {'vs JAX ref':>10} "
          f"{'GFLOP/s':>8} {'vs matmul':>9}")

    def report(label: str, parts: ModelParts, batch: int, steps: int, jax: bool, repeats: int = 1,
               dense: int = 0) -> None:
        base = None
        for name, kw in variants:
            step = make_step(parts, batch, model_name=args.model, dense=dense, **kw)
            warmup = 2 if kw["compile_"] else 1  # compilation happens in the first steps, outside the timing
            ips = images_per_second(step, batch, steps, warmup, repeats)
            gflops = step_flops(step) * ips / batch / 1e9
            base = base or ips
            ref = JAX_REFERENCE.get(batch) if jax and args.model == "qlae" else None  # the reference ran QLAE
            print(f"{label:<12} {batch:>5}  {name:<31} {ips:>9.1f} {ips / base:>10.2f}x "
                  f"{(f'{ips / ref:.1f}x' if ref else '-'):>10} {gflops:>8.1f} {gflops / matmul:>8.0%}")

    for batch in [int(b) for b in args.batches.split(",") if b]:  # --batches "" times the CPU preset only
        report(args.model, ModelParts(image_size=64), batch, args.steps, jax=True)
    label = f"dense {args.dense}" if args.dense else "cpu preset"
    report(label, parts, batch, args.steps * 8, jax=False, repeats=5, dense=args.dense)
    if args.layers:
        layer_table(parts, batch, matmul)

if __name__ == "__main__":
    main()
