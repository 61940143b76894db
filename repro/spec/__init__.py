"""YAML claim specs -> typed, validated objects; every error names the file, the key and what was expected.

errors.py (SpecError, one-line messages) <- reader.py (the hardened YAML reader) <- schema.py (the typed models)
<- observed.py (values measured elsewhere) <- assemble.py (bases, plugins, every arm resolved; load_claim(s))
and runspec.py (one run and its key). The names below are the package's public face.
"""
from .assemble import claim_from_raw, load_claim, load_claims, metric_problem, spec_files  # noqa: F401
from .errors import SpecError, _format, capped, check_name, clip, public_path  # noqa: F401
from .reader import TooBig, read_regular, read_yaml  # noqa: F401
from .runspec import TRAIN_VERSION, RunSpec  # noqa: F401
from .schema import (Arm, BiasShift, Check, Claim, Comparable, Component, Optimizer, Overrides, ParamErrors,  # noqa: F401
                     Profile, Reported, Schedule, Sequential, Source, Strict, Variant, _check_component, dataset_fact,
                     deep_merge, is_observed)
