"""YAML claim specs -> typed, validated objects; every error names the file, the key and what was expected.

errors.py (SpecError, one-line messages) <- reader.py (the hardened YAML reader) <- arm.py (one arm's typed
model) <- schema.py (the claim's: checks, variants, profiles)
<- observed.py (values measured elsewhere) <- assemble.py (bases, plugins, every arm resolved; load_claim(s))
and runspec.py (one run and its key). The names below are the package's public face.
"""
from .assemble import claim_from_raw, load_claim, load_claims, metric_problem, spec_files  # noqa: F401
from .errors import SpecError, _format, capped, check_name, clip, public_path  # noqa: F401
from .reader import TooBig, read_regular, read_yaml  # noqa: F401
from .runspec import TRAIN_VERSION, RunSpec  # noqa: F401
from .arm import (Arm, BiasShift, Checkpoint, Component, Optimizer, Schedule, Strict, _check_component,  # noqa: F401
                  dataset_fact, held_in_memory)
from .errors import ParamErrors  # noqa: F401
from .schema import (Check, Claim, Comparable, Overrides, Profile, Reported, Sequential, Source, Variant,  # noqa: F401
                     deep_merge, is_observed)
