"""Spectral normalisation of the discriminator (Miyato, Kataoka, Koyama and Yoshida 2018,
"Spectral normalization for generative adversarial networks"), and of the generator
(``model.spectral_norm_g``), which SAGAN (Zhang et al. 2019) and BigGAN (Brock et al. 2019) found
to keep G's training stable too.

Every linear, convolution and transposed-convolution layer of D divides its weight by an estimate
of the weight's largest singular value, which keeps each layer, and so D (whose activations are
1-Lipschitz), near 1-Lipschitz: D cannot grow arbitrarily sharp and drive G onto a few modes. A
convolution's weight ``[O, I, k, k]`` is taken as the matrix ``[O, I*k*k]`` (a transposed
convolution's ``[I, O, k, k]`` as ``[O, I*k*k]``), as in the paper.

The estimate is torch's own ``torch.nn.utils.parametrizations.spectral_norm``: one power
iteration per forward call in training mode, none in eval mode. Its vectors u and v are buffers of
the layer (``...parametrizations.weight.0._u`` / ``_v``), so checkpoints hold them and resume
continues exactly. Not normalised: embeddings (the projection head's class embedding) and
normalisation layers; Miyato et al.'s D has no batch norm (``model.batchnorm=false``).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def has_sn_layers(net: nn.Module) -> bool:
    """Whether ``net`` has a layer that ``spectral_norm_`` normalises."""
    return any(isinstance(m, LAYERS) for m in net.modules())


def spectral_norm_(net: nn.Module) -> nn.Module:
    """Spectral normalisation on every linear and (transposed) convolution layer of ``net``, in
    place; returns ``net``."""
    for module in list(net.modules()):
        if isinstance(module, LAYERS):
            spectral_norm(module)
    return net
