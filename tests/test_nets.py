"""Networks: shapes, ranges, gradients, conditioning, init, errors and the classic MNIST MLP."""

from __future__ import annotations

import pytest
import torch

from gankit.config import ModelConfig
from gankit.errors import UserError
from gankit.nets import build_discriminator, build_generator
from gankit.registry import NETS

N = 6
IMAGE_SHAPES = [(c, s, s) for s in (28, 32, 64) for c in (1, 3)]


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{"z_dim": 8, "width": 4, "depth": 2, **kw})


def labels(n: int = N, k: int = 3) -> torch.Tensor:
    return torch.arange(n) % k


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


# ---------------------------------------------------------------------------------------------
# shapes


@pytest.mark.parametrize("shape", [(1,), (2,), (1, 28, 28)])
@pytest.mark.parametrize("cond", [None, "onehot", "embed"])
def test_mlp_shapes(shape: tuple[int, ...], cond: str | None) -> None:
    cfg = tiny(net="mlp", cond=cond or "onehot")
    k = 0 if cond is None else 3
    y = labels() if k else None
    G, D = build_generator(cfg, shape, k), build_discriminator(cfg, shape, k)
    x = G(torch.randn(N, 8), y)
    assert x.shape == (N, *shape)
    assert D(x, y).shape == (N,)
    assert (G.z_dim, G.shape, G.num_classes, D.shape, D.num_classes) == (8, shape, k, shape, k)


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_dcgan_shapes(shape: tuple[int, ...]) -> None:
    cfg = tiny(net="dcgan")
    G, D = build_generator(cfg, shape), build_discriminator(cfg, shape)
    x = G(torch.randn(N, 8))
    assert x.shape == (N, *shape)
    assert D(x).shape == (N,)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64)])
@pytest.mark.parametrize("cond", ["onehot", "embed"])
def test_dcgan_conditional_shapes(shape: tuple[int, ...], cond: str) -> None:
    cfg = tiny(net="dcgan", cond=cond)
    G, D = build_generator(cfg, shape, 3), build_discriminator(cfg, shape, 3)
    x = G(torch.randn(N, 8), labels())
    assert x.shape == (N, *shape)
    assert D(x, labels()).shape == (N,)


@pytest.mark.parametrize(
    "net, shape",
    [("mlp", (2,)), ("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28)), ("dcgan", (3, 32, 32))],
)
def test_autoencoder_d(net: str, shape: tuple[int, ...]) -> None:
    D = build_discriminator(tiny(net=net, d_output="autoencoder"), shape)
    x = torch.randn(N, *shape)
    code = D.encode(x)
    assert code.shape == (N, D.code_dim)
    rec = D.reconstruct(x)
    assert rec.shape == x.shape
    score = D(x)
    assert score.shape == (N,)
    assert (score <= 0).all()  # minus an energy
    D.eval()  # no batch-norm statistics drift between the two passes
    torch.testing.assert_close(D(x), -((D.reconstruct(x) - x) ** 2).flatten(1).mean(1))


def test_mlp_autoencoder_bottleneck_is_width() -> None:
    D = build_discriminator(tiny(net="mlp", d_output="autoencoder", width=5, depth=3), (1, 28, 28))
    assert D.code_dim == 5


# ---------------------------------------------------------------------------------------------
# output ranges


@pytest.mark.parametrize("net, shape", [("mlp", (1, 28, 28)), ("dcgan", (3, 32, 32))])
def test_image_generator_ends_in_tanh(net: str, shape: tuple[int, ...]) -> None:
    G = build_generator(tiny(net=net, batchnorm=False), shape)  # batch norm would undo the scale
    x = G(1e6 * torch.randn(N, 8))
    assert x.abs().max() <= 1
    assert x.abs().max() > 0.99  # a big input saturates tanh: the range is really [-1, 1]


@pytest.mark.parametrize("shape", [(1,), (2,)])
def test_toy_generator_is_linear(shape: tuple[int, ...]) -> None:
    G = build_generator(tiny(net="mlp"), shape)
    assert G(100 * torch.randn(N, 8)).abs().max() > 1


@pytest.mark.parametrize(
    "net, shape",
    [("mlp", (2,)), ("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28)), ("dcgan", (3, 64, 64))],
)
def test_d_returns_raw_scores(net: str, shape: tuple[int, ...]) -> None:
    D = build_discriminator(tiny(net=net, batchnorm=False), shape)
    s = D(1000 * torch.randn(N, *shape))
    assert s.shape == (N,)  # not [N, 1]
    assert ((s < 0) | (s > 1)).any()  # no sigmoid


# ---------------------------------------------------------------------------------------------
# gradients


GRAD_CASES = [
    ("mlp", (2,), 0, "onehot", "linear", True),
    ("mlp", (1, 28, 28), 3, "onehot", "linear", True),
    ("mlp", (2,), 3, "embed", "linear", True),
    ("mlp", (1, 28, 28), 0, "onehot", "autoencoder", True),
    ("dcgan", (1, 28, 28), 3, "onehot", "linear", True),
    ("dcgan", (3, 32, 32), 3, "embed", "linear", False),
    ("dcgan", (3, 64, 64), 0, "onehot", "linear", True),
    ("dcgan", (1, 32, 32), 0, "onehot", "autoencoder", True),
]


@pytest.mark.parametrize("net, shape, k, cond, d_output, bn", GRAD_CASES)
def test_forward_backward_grads(
    net: str, shape: tuple[int, ...], k: int, cond: str, d_output: str, bn: bool
) -> None:
    cfg = tiny(net=net, cond=cond, d_output=d_output, batchnorm=bn, dropout=0.0)
    G, D = build_generator(cfg, shape, k), build_discriminator(cfg, shape, k)
    y = labels() if k else None
    loss = D(G(torch.randn(N, 8), y), y).mean() + D(torch.randn(N, *shape), y).mean()
    loss.backward()
    for net_, name in ((G, "G"), (D, "D")):
        for pname, p in net_.named_parameters():
            assert p.grad is not None, f"{name}.{pname} has no grad"
            assert torch.isfinite(p.grad).all(), f"{name}.{pname} has a non-finite grad"
            assert p.grad.abs().sum() > 0, f"{name}.{pname} has an all-zero grad"


# ---------------------------------------------------------------------------------------------
# conditioning


@pytest.mark.parametrize(
    "net, shape", [("mlp", (2,)), ("mlp", (1, 28, 28)), ("dcgan", (1, 28, 28))]
)
@pytest.mark.parametrize("cond", ["onehot", "embed"])
def test_labels_change_outputs(net: str, shape: tuple[int, ...], cond: str) -> None:
    cfg = tiny(net=net, cond=cond)
    G, D = build_generator(cfg, shape, 3).eval(), build_discriminator(cfg, shape, 3).eval()
    z, x = torch.randn(N, 8), torch.randn(N, *shape)
    y0, y1 = torch.zeros(N, dtype=torch.long), torch.ones(N, dtype=torch.long)
    with torch.no_grad():
        assert not torch.allclose(G(z, y0), G(z, y1))
        assert not torch.allclose(D(x, y0), D(x, y1))


@pytest.mark.parametrize("net, shape", [("mlp", (2,)), ("dcgan", (1, 28, 28))])
def test_label_errors(net: str, shape: tuple[int, ...]) -> None:
    cond_G, cond_D = (
        build_generator(tiny(net=net), shape, 3),
        build_discriminator(tiny(net=net), shape, 3),
    )
    G, D = build_generator(tiny(net=net), shape), build_discriminator(tiny(net=net), shape)
    z, x, y = torch.randn(N, 8), torch.randn(N, *shape), labels()
    with pytest.raises(ValueError, match="conditional"):
        cond_G(z)
    with pytest.raises(ValueError, match="conditional"):
        cond_D(x)
    with pytest.raises(ValueError, match="unconditional"):
        G(z, y)
    with pytest.raises(ValueError, match="unconditional"):
        D(x, y)
    with pytest.raises(ValueError, match=r"y must have shape \[6\]"):
        cond_D(x, y[:, None])
    with pytest.raises(ValueError, match=r"y must have shape \[6\]"):
        cond_G(z, y[:3])
    with pytest.raises(ValueError, match="integer"):
        cond_D(x, y.float())


def test_input_shape_errors() -> None:
    G, D = (
        build_generator(tiny(net="dcgan"), (1, 28, 28)),
        build_discriminator(tiny(net="dcgan"), (1, 28, 28)),
    )
    with pytest.raises(ValueError, match=r"z must have shape \[\*, 8\].*got \[6, 9\]"):
        G(torch.randn(N, 9))
    with pytest.raises(
        ValueError, match=r"x must have shape \[\*, 1, 28, 28\].*got \[6, 3, 28, 28\]"
    ):
        D(torch.randn(N, 3, 28, 28))
    Dae = build_discriminator(tiny(d_output="autoencoder"), (2,))
    with pytest.raises(ValueError, match="x must have shape"):
        Dae.encode(torch.randn(N, 3))


# ---------------------------------------------------------------------------------------------
# init, parameter counts, round trip, errors


def test_dcgan_init_statistics() -> None:
    cfg = tiny(net="dcgan", width=16)
    for net in (build_generator(cfg, (3, 64, 64)), build_discriminator(cfg, (3, 64, 64))):
        convs = [
            m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
        ]
        w = torch.cat([m.weight.flatten() for m in convs])
        assert 0.019 < w.std().item() < 0.021
        assert abs(w.mean().item()) < 0.001
        bn = torch.cat([m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)])
        assert 0.98 < bn.mean().item() < 1.02
        assert 0.01 < bn.std().item() < 0.03
        for m in convs:
            assert m.bias is None or (m.bias == 0).all()


def test_classic_mnist_mlp_parameter_count() -> None:
    cfg = ModelConfig(net="mlp", z_dim=100, width=256, depth=3)

    def dense(sizes: list[int]) -> int:  # weights + biases of a chain of linear layers
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=False))

    G, D = build_generator(cfg, (1, 28, 28)), build_discriminator(cfg, (1, 28, 28))
    expected_G = dense([100, 256, 512, 1024, 784])
    expected_D = dense([784, 1024, 512, 256, 1])
    assert expected_G == 1_486_352 and expected_D == 1_460_225
    assert sum(p.numel() for p in G.parameters()) == expected_G
    assert sum(p.numel() for p in D.parameters()) == expected_D


@pytest.mark.parametrize("net, shape", [("mlp", (2,)), ("dcgan", (3, 32, 32))])
def test_rebuild_from_config(net: str, shape: tuple[int, ...]) -> None:
    cfg = tiny(net=net, cond="embed")
    G, D = build_generator(cfg, shape, 3).eval(), build_discriminator(cfg, shape, 3).eval()
    G2 = build_generator(G.cfg, G.shape, G.num_classes).eval()
    D2 = build_discriminator(D.cfg, D.shape, D.num_classes).eval()
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    z, y = torch.randn(N, 8), labels()
    with torch.no_grad():
        torch.testing.assert_close(G2(z, y), G(z, y))
        torch.testing.assert_close(D2(G(z, y), y), D(G(z, y), y))


@pytest.mark.parametrize("shape", [(1, 48, 48), (2, 32, 32), (3, 32, 64), (2,)])
def test_dcgan_unsupported_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(UserError, match="28, 32 or 64 px"):
        build_generator(tiny(net="dcgan"), shape)
    if shape == (2, 32, 32):  # D takes any channel count: a packed D sees m images' channels
        assert build_discriminator(tiny(net="dcgan"), shape)(torch.randn(2, *shape)).shape == (2,)
        return
    with pytest.raises(UserError, match="28, 32 or 64 px"):
        build_discriminator(tiny(net="dcgan"), shape)


def test_build_errors() -> None:
    assert {"mlp", "dcgan"} <= set(NETS.names())
    with pytest.raises(UserError, match="unknown network 'nope'"):
        build_generator(tiny(net="nope"), (2,))
    with pytest.raises(UserError, match="unconditional"):
        build_discriminator(tiny(d_output="autoencoder"), (2,), num_classes=3)
    with pytest.raises(UserError, match="data shape"):
        build_generator(tiny(), (2, 3))
    with pytest.raises(UserError, match="num_classes"):
        build_generator(tiny(), (2,), num_classes=-1)


# ---------------------------------------------------------------------------------------------
# the MLP family's options: VEEGAN/PacGAN's 2-D nets


def test_maxout_takes_the_largest_piece_of_each_unit() -> None:
    from gankit.nets.layers import Maxout

    h = torch.tensor([[1.0, 5.0, -2.0, 0.5, 0.25, 3.0]])  # 2 units x 3 adjacent pieces
    assert Maxout(3)(h).tolist() == [[5.0, 3.0]]


def test_mlp_options_build_veegan_nets() -> None:
    opts = {"g_width": 40, "g_depth": 4, "g_batchnorm": True, "d_maxout": 5}
    cfg = tiny(net="mlp", width=20, depth=3, leak=0.0, options=opts)
    G, D = build_generator(cfg, (2,)), build_discriminator(cfg, (2,))
    g_lin = [m for m in G.body if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in g_lin] == [40] * 4
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.body) == 4
    d_lin = [m for m in D.body if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in d_lin] == [100] * 3  # 20 units x 5 pieces
    x = torch.randn(N, 2, requires_grad=True)
    assert G(torch.randn(N, 8)).shape == (N, 2) and D(x).shape == (N,)
    D(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    plain = tiny(net="mlp", width=20, depth=3)  # the defaults: the classic nets, unchanged
    assert [k for k, _ in build_generator(plain, (2,)).named_parameters()] == [
        "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
        "body.4.weight", "body.4.bias", "out.weight", "out.bias",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "d_output", "words"),
    [
        ({"g_width": -1}, "linear", "model.options.g_width must be 0"),
        ({"d_maxout": 1}, "linear", "d_maxout=1 is a linear layer"),
        ({"d_maxout": 3}, "autoencoder", "set model.options.d_maxout=0"),
        ({"g_widht": 4}, "linear", "model.net=mlp has no option"),
    ],
)
def test_mlp_option_errors(options: dict, d_output: str, words: str) -> None:
    cfg = tiny(net="mlp", options=options, d_output=d_output)
    with pytest.raises(UserError, match=words):
        build_discriminator(cfg, (2,))
