"""What one run is (an arm fully resolved for one seed, its teacher a run too) and its key."""
from __future__ import annotations

import hashlib
import json
from typing import Optional

from .arm import Arm, Strict

# Bump when a change alters what training computes for an unchanged spec: it is part of every
# run key, so results from the old code stop counting as done (and are reported as stale).
# 2: dropout masks drawn with torch.rand (models.Dropout), fused optimiser steps.
TRAIN_VERSION = 2


class RunSpec(Strict):
    """One arm of one claim for one seed, fully resolved; its teacher is itself a RunSpec.

    Not tied to a claim: two claims needing the same teacher produce equal RunSpecs, hence
    the same key, so the store trains it once.
    """

    arm: Arm
    seed: int
    teacher: Optional["RunSpec"] = None
    init_from: Optional["RunSpec"] = None  # start from this run's final weights (arm.init_from)
    teachers: list["RunSpec"] = []  # several teachers (arm.teachers), in the arm's order; [] keeps keys
    # The sha256 of each plugin file whose builder (model, data, loss) the arm uses, by the file's name (or the
    # module's name): a plugin whose code changes makes other runs. {} (no plugin) keeps every other key.
    code: dict[str, str] = {}

    @property
    def key(self) -> str:
        # exclude_defaults: a field added later with a default leaves existing keys (and results) valid.
        canonical = json.dumps({"run": self.model_dump(mode="json", exclude_defaults=True),
                                "train_version": TRAIN_VERSION},
                               sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
