"""Steering a trained generator: truncation, interpolation, latent arithmetic (Radford et al. 2016)
and classifier-guided editing of latent codes (optimize and direction modes)."""

from .editing import (
    EditResult,
    class_codes,
    edit,
    edit_direction,
    edit_optimize,
    entanglement,
    fit_direction,
    label_latents,
)
from .latent import (
    arithmetic,
    arithmetic_grid,
    class_means,
    generate,
    interpolate,
    lerp,
    sample_latents,
    save_gif,
    slerp,
    truncate_to_mean,
    truncated_normal,
)

__all__ = [
    "EditResult",
    "arithmetic",
    "arithmetic_grid",
    "class_codes",
    "class_means",
    "edit",
    "edit_direction",
    "edit_optimize",
    "entanglement",
    "fit_direction",
    "generate",
    "interpolate",
    "label_latents",
    "lerp",
    "sample_latents",
    "save_gif",
    "slerp",
    "truncate_to_mean",
    "truncated_normal",
]
