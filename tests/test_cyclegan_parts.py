"""CycleGAN's parts: the ResNet generator, the PatchGAN discriminator, the reconstruction losses
and the image pool, each against its specification (Zhu et al. 2017)."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gankit import losses as L
from gankit.errors import UserError
from gankit.losses.reconstruction import cycle_loss, identity_loss
from gankit.nets.layers import init_normal
from gankit.nets.patchgan import PAPER, PatchDiscriminator, patch_map_size, receptive_field
from gankit.nets.resnet import PAPER_256, ResnetGenerator
from gankit.variants.image_pool import ImagePool


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ---------------------------------------------------------------------------------------------
# the ResNet generator


@pytest.mark.parametrize("side", [28, 32])
@pytest.mark.parametrize("c_in, c_out", [(1, 1), (1, 3), (3, 1)])
def test_resnet_shapes_and_range(side: int, c_in: int, c_out: int) -> None:
    G = ResnetGenerator(c_in, c_out, ngf=32, n_blocks=6, n_down=2)
    y = G(torch.rand(2, c_in, side, side) * 2 - 1)
    assert y.shape == (2, c_out, side, side)
    assert y.abs().max() <= 1


def test_resnet_ends_in_tanh() -> None:
    G = ResnetGenerator(1, 1, ngf=4, n_blocks=1)
    with torch.no_grad():
        G.net[-2].bias.fill_(100.0)  # the output conv: tanh must saturate, not pass 100 on
    y = G(torch.zeros(1, 1, 8, 8))
    assert_close(y, torch.ones_like(y))


def test_resnet_non_square_and_blocks() -> None:
    G = ResnetGenerator(3, 3, ngf=4, n_blocks=2, n_down=3)
    assert G(torch.randn(1, 3, 16, 24)).shape == (1, 3, 16, 24)
    blocks = [m for m in G.modules() if type(m).__name__ == "ResnetBlock"]
    assert len(blocks) == 2
    assert all(m.body[1].in_channels == 4 * 2**3 for m in blocks)  # ngf * 2**n_down


def test_resnet_forward_backward_reaches_every_parameter() -> None:
    G = ResnetGenerator(1, 1, ngf=32, n_blocks=6, n_down=2)
    G(torch.randn(2, 1, 28, 28)).square().mean().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("side", [30, 27, 6])
def test_resnet_rejects_sides_it_cannot_restore(side: int) -> None:
    G = ResnetGenerator(1, 1, ngf=4, n_blocks=1, n_down=2)
    with pytest.raises(UserError, match="multiples of 4"):
        G(torch.randn(1, 1, side, 28))


def test_resnet_rejects_wrong_channels_and_options() -> None:
    G = ResnetGenerator(3, 3, ngf=4, n_blocks=1)
    with pytest.raises(ValueError, match=r"\[\*, 3, \*, \*\]"):
        G(torch.randn(1, 1, 8, 8))
    with pytest.raises(UserError, match="ngf"):
        ResnetGenerator(3, 3, ngf=0)
    with pytest.raises(UserError, match="n_blocks"):
        ResnetGenerator(3, 3, n_blocks=-1)


def test_resnet_paper_size_parameter_count() -> None:
    # 256 px, 9 blocks, ngf 64: the CycleGAN code prints 11,378,179 parameters for this net
    G = ResnetGenerator(3, 3, **PAPER_256)
    assert n_params(G) == 11_378_179


def test_resnet_digits_size_parameter_count() -> None:
    # 7x7 stem + 2 downs + 6 blocks at 128 channels + 2 ups + 7x7 out, all with biases
    c = 32
    stem, out = 7 * 7 * 1 * c + c, 7 * 7 * c * 1 + 1
    down = (9 * c * 2 * c + 2 * c) + (9 * 2 * c * 4 * c + 4 * c)
    blocks = 6 * 2 * (9 * (4 * c) ** 2 + 4 * c)
    up = (9 * 4 * c * 2 * c + 2 * c) + (9 * 2 * c * c + c)
    assert n_params(ResnetGenerator(1, 1)) == stem + down + blocks + up + out


def test_instance_norm_without_affine_or_running_stats() -> None:
    G, D = ResnetGenerator(1, 1, ngf=4, n_blocks=1), PatchDiscriminator(1, ndf=4, n_layers=2)
    norms = [m for net in (G, D) for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 1 + 2 + 2 * 1 + 2 + 2  # G: stem, downs, 2 per block, ups; D: 2
    assert all(not m.affine and not m.track_running_stats for m in norms)
    assert not any(isinstance(m, nn.BatchNorm2d) for net in (G, D) for m in net.modules())


# ---------------------------------------------------------------------------------------------
# init


@pytest.mark.parametrize(
    "net", [ResnetGenerator(3, 3, ngf=32, n_blocks=6), PatchDiscriminator(3, ndf=64, n_layers=3)]
)
def test_init_statistics(net: nn.Module) -> None:
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    w = torch.cat([m.weight.flatten() for m in convs])
    # ~10^5..10^6 draws: the sample std of N(0, 0.02) is within 1% of 0.02, the mean near 0
    assert 0.0198 < w.std().item() < 0.0202
    assert abs(w.mean().item()) < 2e-4
    assert all((m.bias == 0).all() for m in convs)


def test_init_normal_draws_norm_scales_around_one() -> None:
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(4000), nn.InstanceNorm2d(4000, affine=True)
    )
    assert init_normal(net, std=0.05) is net
    for m in net[1:]:
        assert 0.048 < m.weight.std().item() < 0.052
        assert abs(m.weight.mean().item() - 1) < 0.005
        assert (m.bias == 0).all()
    assert 0.0 < net[0].weight.std().item() < 0.2 and (net[0].bias == 0).all()


# ---------------------------------------------------------------------------------------------
# the PatchGAN discriminator


@pytest.mark.parametrize(
    "side, n_layers, expect", [(28, 2, 5), (32, 2, 6), (28, 3, 1), (32, 3, 2), (256, 3, 30)]
)
def test_patch_map_size(side: int, n_layers: int, expect: int) -> None:
    assert patch_map_size(side, n_layers) == expect
    ndf = 64 if side < 64 else 4  # keep the 256 px case cheap on a CPU
    D = PatchDiscriminator(3, ndf=ndf, n_layers=n_layers)
    assert D(torch.randn(2, 3, side, side)).shape == (2, expect, expect)


def test_patch_scores_are_raw_and_differentiable() -> None:
    D = PatchDiscriminator(1, ndf=64, n_layers=2)
    x = torch.randn(3, 1, 28, 28, requires_grad=True)
    s = D(x)
    assert s.shape == (3, 5, 5)
    with torch.no_grad():
        D.net[-1].bias.fill_(5.0)
    assert (D(x) > 1).all()  # no sigmoid caps the scores
    L.lsgan_d(s, D(x)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in D.parameters())


def test_patch_receptive_field_is_70_for_three_layers() -> None:
    assert [receptive_field(n) for n in (1, 2, 3)] == [16, 34, 70]
    # Instance norm mixes the whole image; without it, one score sees exactly its patch.
    D = PatchDiscriminator(1, ndf=2, n_layers=3)
    for name, m in list(D.net.named_children()):
        if isinstance(m, nn.InstanceNorm2d):
            D.net[int(name)] = nn.Identity()
    x = torch.randn(1, 1, 160, 160, requires_grad=True)
    s = D(x)  # [1, 18, 18]
    s[0, 9, 9].backward()
    rows, cols = x.grad[0, 0].abs().gt(0).nonzero().unbind(1)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (70, 70)


def test_patch_paper_size_parameter_count() -> None:
    # n_layers 3, ndf 64, RGB: the CycleGAN code prints 2,764,737 parameters for its D
    assert n_params(PatchDiscriminator(3, **PAPER)) == 2_764_737


def test_patch_rejects_too_small_images() -> None:
    D = PatchDiscriminator(1, ndf=4, n_layers=3)
    D(torch.randn(1, 1, 24, 24))  # the smallest side: a 1x1 map
    with pytest.raises(UserError, match="at least 24x24"):
        D(torch.randn(1, 1, 23, 32))
    with pytest.raises(ValueError):
        D(torch.randn(1, 3, 32, 32))


# ---------------------------------------------------------------------------------------------
# losses


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def test_cycle_and_identity_losses_closed_form() -> None:
    x = t(0.0, 1.0, -1.0, 0.5).view(1, 1, 2, 2)
    y = t(1.0, 1.0, 1.0, -0.5).view(1, 1, 2, 2)
    assert_close(cycle_loss(x, y), t(1.0).squeeze())  # (1 + 0 + 2 + 1) / 4
    assert_close(identity_loss(x, y), t(1.0).squeeze())
    assert_close(cycle_loss(x, x), t(0.0).squeeze())
    with pytest.raises(ValueError, match="same shape"):
        cycle_loss(x, y.view(1, 4))  # no silent broadcasting


def test_cycle_loss_gradient_is_sign_over_n() -> None:
    x = torch.zeros(2, 1, 2, 2, dtype=torch.float64)
    rec = t(1, -2, 3, -4, 5, -6, 7, -8).view(2, 1, 2, 2).requires_grad_()
    cycle_loss(x, rec).backward()
    assert_close(rec.grad, rec.detach().sign() / 8)


def test_lsgan_losses_accept_patch_maps() -> None:
    real = t(1.0, 3.0, 0.0, 1.0).view(1, 2, 2)  # [N, H', W']
    fake = t(-1.0, 0.0, 2.0, 1.0).view(1, 2, 2)
    # 0.5 E[(D(x) - 1)^2] + 0.5 E[D(G)^2] over every patch
    assert_close(L.lsgan_d(real, fake), t(0.5 * (5 / 4) + 0.5 * (6 / 4)).squeeze())
    assert_close(L.lsgan_g(fake), t(0.5 * (4 + 1 + 1 + 0) / 4).squeeze())
    # CycleGAN's code: D = 0.5 (MSE(real, 1) + MSE(fake, 0)), G = MSE(fake, 1) = 2 lsgan_g
    mse = nn.functional.mse_loss
    d_ref = 0.5 * (mse(real, torch.ones_like(real)) + mse(fake, torch.zeros_like(fake)))
    assert_close(L.lsgan_d(real, fake), d_ref)
    assert_close(2 * L.lsgan_g(fake), mse(fake, torch.ones_like(fake)))


# ---------------------------------------------------------------------------------------------
# the image pool


def batch(start: int, n: int = 1) -> torch.Tensor:
    """Images whose every pixel is their id, so a returned image says where it came from."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2)


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def stored_ids(pool: ImagePool) -> list[int]:
    return ids(pool.images[: pool.count])


def test_pool_passes_and_stores_the_first_images() -> None:
    pool = ImagePool(50, seed=0)
    for k in range(0, 48, 8):  # 48 images, then a batch of 5 that fills the pool mid-batch
        assert ids(pool.query(batch(k, 8))) == list(range(k, k + 8))
    assert stored_ids(pool) == list(range(48))
    out = pool.query(batch(48, 5))
    assert len(pool) == 50
    assert ids(out)[:2] == [48, 49]  # images 48 and 49 filled the pool and passed through
    # 50..52 met a full pool: each came back or went in while an older image came out
    assert all(got <= i for i, got in zip((50, 51, 52), ids(out)[2:], strict=True))
    assert sorted(stored_ids(pool) + ids(out)[2:]) == list(range(53))
    exact = ImagePool(50, seed=0)
    assert ids(exact.query(batch(0, 50))) == list(range(50))
    assert stored_ids(exact) == list(range(50))


def test_pool_swaps_half_the_time() -> None:
    pool, n = ImagePool(50, seed=1), 4000
    pool.query(batch(0, 50))
    swapped = sum(ids(pool.query(batch(50 + k)))[0] != 50 + k for k in range(n))
    # Binomial(4000, 1/2): std 31.6; 5 sigma either side
    assert abs(swapped - n / 2) < 5 * math.sqrt(n / 4)


def test_pool_returned_old_image_was_stored_and_is_replaced() -> None:
    pool = ImagePool(5, seed=2)
    pool.query(batch(0, 5))
    swaps = 0
    for k in range(5, 205):
        before = stored_ids(pool)
        (got,) = ids(pool.query(batch(k)))
        after = stored_ids(pool)
        if got == k:  # kept the new image: the pool is unchanged
            assert after == before
        else:  # an old image came back, from its slot, which now holds the new one
            swaps += 1
            j = before.index(got)
            assert after[j] == k and after[:j] + after[j + 1 :] == before[:j] + before[j + 1 :]
    assert 60 < swaps < 140


def test_pool_sequential_within_a_batch() -> None:
    # one batch behaves like its images queried one by one
    a, b = ImagePool(4, seed=3), ImagePool(4, seed=3)
    a.query(batch(0, 4))
    b.query(batch(0, 4))
    out_a = a.query(batch(4, 64))
    out_b = torch.cat([b.query(batch(4 + i)) for i in range(64)])
    assert ids(out_a) == ids(out_b) and stored_ids(a) == stored_ids(b)
    assert len(set(ids(out_a))) == 64  # an image is never returned twice


def test_pool_is_seeded_and_detaches() -> None:
    x = batch(0, 30).clone().requires_grad_()
    runs = []
    for seed in (7, 7, 8):
        pool = ImagePool(10, seed=seed)
        out = [ids(pool.query(x[i : i + 3])) for i in range(0, 30, 3)]
        runs.append(out)
        assert not pool.images.requires_grad and not pool.query(x[:3]).requires_grad
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_pool_size_zero_returns_input() -> None:
    pool = ImagePool(0)
    x = torch.randn(3, 1, 4, 4)
    assert pool.query(x) is x and len(pool) == 0
    with pytest.raises(UserError):
        ImagePool(-1)


def test_pool_keeps_its_images_apart_from_the_callers() -> None:
    pool = ImagePool(2, seed=0)
    x = batch(0, 2).clone()
    pool.query(x)
    x.fill_(-1)  # the caller reuses its buffer
    assert stored_ids(pool) == [0, 1]
    with pytest.raises(ValueError, match="shape"):
        pool.query(torch.zeros(1, 1, 3, 3))


@pytest.mark.parametrize("filled", [0, 3, 8])
def test_pool_state_dict_round_trip_continues_exactly(filled: int) -> None:
    torch.manual_seed(0)
    data = torch.randn(60, 1, 4, 4)
    ref = ImagePool(8, seed=5)
    ref.query(data[:filled])
    ref_later = [ref.query(data[i : i + 4]) for i in range(filled, 40, 4)]

    pool = ImagePool(8, seed=5)
    pool.query(data[:filled])
    buf = io.BytesIO()
    torch.save(pool.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert all(isinstance(v, (int, torch.Tensor)) for v in state.values())
    assert state["images"].shape == (filled, 1, 4, 4) and state["images"].device.type == "cpu"
    pool.query(data[40:44])  # diverge, then restore
    fresh = ImagePool(8, seed=99)  # the seed comes back with the state
    for p in (pool, fresh):
        p.load_state_dict(state)
        later = [p.query(data[i : i + 4]) for i in range(filled, 40, 4)]
        for a, b in zip(later, ref_later, strict=True):
            assert torch.equal(a, b)
        assert p.seed == 5


def test_pool_state_dict_is_a_copy_and_checks_size() -> None:
    pool = ImagePool(4, seed=0)
    pool.query(batch(0, 2))
    state = pool.state_dict()
    state["images"].fill_(-1)
    assert stored_ids(pool) == [0, 1]
    assert state["images"].untyped_storage().nbytes() == 2 * 4 * 4  # [2, 1, 2, 2] float32 only
    with pytest.raises(UserError, match="pool size"):
        ImagePool(5).load_state_dict(pool.state_dict())
