"""Metrics: one file each, registered by name; they never import training code."""

from . import modes  # noqa: F401  (registers modes2d)
