import pytest
import torch

from latentquant import ScalarQuantizer


def test_codebooks_start_evenly_on_half_interval():
    q = ScalarQuantizer(3, 10)
    for j in range(3):
        assert torch.allclose(q.codebook(j), torch.linspace(-0.5, 0.5, 10))


def test_outputs_are_codebook_values_and_nearest():
    torch.manual_seed(0)
    q = ScalarQuantizer(4, [3, 5, 10, 2])
    z = torch.randn(256, 4)
    out = q(z)
    for j in range(4):
        book = q.codebook(j).detach()
        # every output is a value of its own codebook ...
        assert torch.isin(out.z_hat[:, j].detach(), book).all()
        # ... the nearest one
        nearest = book[(z[:, j, None] - book).abs().argmin(1)]
        assert torch.equal(out.z_hat[:, j].detach(), nearest)
        assert torch.equal(out.indices[:, j], (z[:, j, None] - book).abs().argmin(1))
    assert out.indices.dtype == torch.long


def test_straight_through_gradient_reaches_encoder():
    q = ScalarQuantizer(2, 5)
    z = torch.randn(8, 2, requires_grad=True)
    out = q(z)
    weights = torch.randn(8, 2)
    (out.z_hat * weights).sum().backward()
    # identity Jacobian: the decoder's gradient passes through quantization unchanged
    assert torch.allclose(z.grad, weights)


def test_codebook_gets_gradient_only_from_quantization_loss():
    q = ScalarQuantizer(2, 5)
    z = torch.randn(16, 2, requires_grad=True)
    out = q(z)
    (out.z_hat.square().sum() + out.losses["commitment"]).backward()
    assert q.values.grad is None or torch.count_nonzero(q.values.grad) == 0
    assert z.grad is not None and torch.count_nonzero(z.grad) > 0
    q.zero_grad()
    z.grad = None
    out = q(z)
    out.losses["quantization"].backward()
    assert q.values.grad is not None and torch.count_nonzero(q.values.grad) > 0
    assert z.grad is None  # the quantization loss must not move the encoder


def test_quantization_loss_moves_values_towards_encodings():
    q = ScalarQuantizer(1, 2)
    opt = torch.optim.SGD(q.parameters(), lr=0.5)
    z = torch.full((32, 1), 0.3)
    before = q.codebook(0).detach().clone()
    for _ in range(20):
        opt.zero_grad()
        q(z).losses["quantization"].backward()
        opt.step()
    after = q.codebook(0).detach()
    assert abs(after[1] - 0.3) < abs(before[1] - 0.3) / 10  # the used value converged
    assert after[0] == before[0]  # the unused value did not move


def test_fixed_values_stay_fixed():
    q = ScalarQuantizer(3, 4, learn_values=False)
    assert not q.values.requires_grad
    z = torch.randn(8, 3, requires_grad=True)
    out = q(z)
    (out.z_hat.sum() + out.losses["quantization"] + out.losses["commitment"]).backward()
    assert q.values.grad is None
    assert torch.allclose(q.codebook(0), torch.linspace(-0.5, 0.5, 4))


def test_ragged_codebooks_never_pick_padding():
    q = ScalarQuantizer(2, [2, 6])
    z = torch.linspace(-3, 3, 101)[:, None].repeat(1, 2)
    idx = q(z).indices
    assert idx[:, 0].max() <= 1 and idx[:, 1].max() <= 5


def test_prior_samples_are_codebook_values():
    q = ScalarQuantizer(3, [2, 3, 4])
    s = q.sample(500, generator=torch.Generator().manual_seed(0))
    for j in range(3):
        assert torch.isin(s[:, j].detach(), q.codebook(j).detach()).all()
        assert len(torch.unique(s[:, j])) == q.num_values[j]


def test_bad_shape_is_named():
    with pytest.raises(ValueError, match="shape"):
        ScalarQuantizer(3)(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="entries"):
        ScalarQuantizer(3, [2, 2])


def test_global_quantizer_shares_one_codebook():
    from latentquant.modules.quantizers import GlobalScalarQuantizer

    q = GlobalScalarQuantizer(3, 5)
    z = torch.tensor([[0.26, -0.4, 0.1], [0.0, 0.5, -0.26]])
    out = q(z)
    book = q.codebook(0).detach()
    assert torch.equal(out.z_hat.detach(), book[(z[..., None] - book).abs().argmin(-1)])
    out.losses["quantization"].backward()
    assert q.values.grad.shape == (1, 5) and torch.count_nonzero(q.values.grad) > 0


def test_vector_quantizer_snaps_slots_to_nearest_embedding():
    from latentquant.modules.quantizers import VectorQuantizer

    torch.manual_seed(0)
    vq = VectorQuantizer(2, num_embeddings=8, embedding_dim=3)
    target = vq.embeddings.detach()[[5, 2]]
    out = vq((target + 0.01).flatten()[None])
    assert out.indices.tolist() == [[5, 2]]
    assert torch.allclose(out.z_hat.view(2, 3), target)
