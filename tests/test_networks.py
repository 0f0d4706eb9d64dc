import pytest
import torch
import torch.nn.functional as F

from latentquant.modules.networks import (
    ImageEncoder,
    StyleDecoder,
    count_parameters,
    modulated_instance_norm,
    repeating_stack,
)

# Counted from the authors' architecture (docs/models.md, "Networks"): ~3.68 M and ~3.97 M.
REFERENCE_ENCODER_12 = 3.68e6
REFERENCE_DECODER = 3.97e6


def test_paper_parameter_counts_match_reference():
    enc, dec = ImageEncoder(12), StyleDecoder(12)
    assert abs(count_parameters(enc) / REFERENCE_ENCODER_12 - 1) < 0.02
    assert abs(count_parameters(dec) / REFERENCE_DECODER - 1) < 0.02


def test_paper_encoder_structure():
    enc = ImageEncoder(12)
    convs = [m for m in enc.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32] * 3 + [64] * 3 + [128] * 3 + [256] * 3
    assert [c.kernel_size[0] for c in convs] == [3, 3, 4] * 4
    assert all(c.bias is None for c in convs)
    assert enc.transition_shape == (256, 4, 4)


def test_decoder_starts_from_constant_point_one_and_outputs_logits_of_input_shape():
    dec = StyleDecoder(12)
    assert torch.all(dec.constant == 0.1) and dec.constant.shape[1:] == (256, 4, 4)
    convs = [b.conv for b in dec.blocks]
    assert [c.out_channels for c in convs] == [256] * 3 + [128] * 3 + [64] * 3 + [32] * 3
    assert all(c.bias is None for c in convs) and dec.out.bias is None
    assert dec(torch.randn(2, 12)).shape == (2, 3, 64, 64)


@pytest.mark.parametrize("size", [32, 64])
def test_small_pair_round_trip(size):
    stack = repeating_stack((16, 32, 64), per_stage=1)
    enc = ImageEncoder(6, image_size=size, stack=stack, dense=(64,))
    dec = StyleDecoder(6, image_size=size, stack=stack, mapping=(64,))
    x = torch.rand(3, 3, size, size)
    assert enc(x).shape == (3, 6)
    assert dec(enc(x)).shape == x.shape


def test_transposed_conv_init_uses_input_fan_in():
    dec = StyleDecoder(4)
    w = dec.blocks[-1].conv.weight  # 32 -> 32 channels, kernel 4
    bound = 1 / (w.shape[0] * 16) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
def test_modulated_instance_norm_is_instance_norm_then_affine_and_keeps_the_memory_format(fmt):
    g = torch.Generator().manual_seed(0)
    h = (3 * torch.randn(4, 8, 16, 16, generator=g) + 2).contiguous(memory_format=fmt).requires_grad_()
    scale = torch.rand(4, 8, 1, 1, generator=g).requires_grad_()
    shift = torch.randn(4, 8, 1, 1, generator=g).requires_grad_()
    out = modulated_instance_norm(h, scale, shift, eps=1e-6)
    ref = F.instance_norm(h, eps=1e-6) * scale + shift
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    upstream = torch.randn(out.shape, generator=g)
    for a, b in zip(torch.autograd.grad(out, (h, scale, shift), upstream),
                    torch.autograd.grad(ref, (h, scale, shift), upstream), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    # The reason it exists: F.instance_norm hands a channels-last map back as NCHW.
    assert out.is_contiguous(memory_format=fmt)
