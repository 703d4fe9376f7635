"""Orthogonal regularisation of a network's weights, BigGAN's version (Brock et al. 2019, "Large
scale GAN training for high fidelity natural image synthesis", section 3.1).

For each weight matrix W: ``||W W^T ⊙ (1 - I)||_F^2``, the squared off-diagonal entries of the
Gram matrix of its filters. Unlike the full orthogonality penalty ``||W W^T - I||_F^2`` of
Brock et al. 2017 it leaves the filters' norms free and only pushes distinct filters apart, which
the paper found makes G amenable to the truncation trick. The paper writes ``W^T W`` with one
filter per column; a torch weight ``[out, in, (k, k)]`` holds one filter per row, flattened here
to ``[out, in * k * k]``, so the same quantity is ``W W^T`` (a transposed convolution's
``[in, out, k, k]`` is first turned to ``[out, in, k, k]``).

The reference code (ajbrock/BigGAN-PyTorch, ``utils.ortho``) adds the gradient
``2 beta (W W^T ⊙ (1 - I)) W`` directly, half the gradient of ``beta`` times the penalty: its
``beta = 1e-4`` corresponds to ``train.ortho_reg=5e-5`` here. Embeddings (BigGAN's shared class
embedding) and normalisation layers are left out; a spectrally normalised layer contributes its
raw weight, the parameter the optimizer steps.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def off_diagonal_gram(w: Tensor) -> Tensor:
    """``||W W^T ⊙ (1 - I)||_F^2`` of one weight, rows = its first dimension: ``[O, ...]`` is
    taken as the matrix ``[O, K]``."""
    w = w.flatten(1).float()  # [O, K]
    if w.shape[0] <= w.shape[1]:
        gram = w @ w.t()  # [O, O]
        return (gram - torch.diag_embed(gram.diagonal())).pow(2).sum()
    # a tall matrix (a linear layer from a small code): ||W W^T||_F = ||W^T W||_F, so the
    # [K, K] Gram gives the same sum without the [O, O] one; minus the diagonal's ||w_i||^4
    gram = w.t() @ w  # [K, K]
    return gram.pow(2).sum() - w.pow(2).sum(dim=1).pow(2).sum()


def layer_weights(net: nn.Module) -> list[Tensor]:
    """The weights that the penalty covers: every linear and (transposed) convolution layer's
    raw weight (the parametrization's original under spectral normalisation), output dim first."""
    out = []
    for m in net.modules():
        if not isinstance(m, LAYERS):
            continue
        sn = parametrize.is_parametrized(m, "weight")
        w = m.parametrizations.weight.original if sn else m.weight
        if isinstance(m, nn.ConvTranspose2d):
            w = w.transpose(0, 1)  # [I, O, k, k] -> [O, I, k, k]
        out.append(w)
    return out


def orthogonal_penalty(net: nn.Module) -> Tensor:
    """The sum of ``off_diagonal_gram`` over ``layer_weights(net)`` (unweighted); a scalar on the
    net's device, zero when it has no such layer."""
    weights = layer_weights(net)
    if not weights:
        return torch.zeros(())
    return torch.stack([off_diagonal_gram(w) for w in weights]).sum()
