"""kd-repro: checks whether knowledge-distillation claims hold.

Importing the package fills the registries (datasets, models, losses, checks), so YAML names resolve.
"""
from . import data, losses, models, stats  # noqa: F401  (registration side effects)
