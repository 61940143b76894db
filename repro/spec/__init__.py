"""YAML claim specs -> typed, validated objects (the schema, the hardened reader, assembly, RunSpec)."""
from .schema import *  # noqa: F401,F403
from .schema import (_check_component, _format, capped, check_name, claim_from_raw, clip, dataset_fact,  # noqa: F401
                     deep_merge, load_claim, load_claims, public_path, read_regular, spec_files)
