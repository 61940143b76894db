"""Statistics as pure functions on numbers: no torch, no files.

checks.py (the check kinds, registered in CHECKS) <- small_sample.py (t tests, skew hedge, rounding term,
permutation companions, seeds to decide); multiplicity.py (Holm); sequential.py (group-sequential looks).
Importing this package registers the built-in check kinds.
"""
from .checks import (DERIVED, KEY_HELP, Derived, at_least, at_most, best_of, equivalent, greater, less,  # noqa: F401
                     matches, needs)
from .multiplicity import holm  # noqa: F401
from .small_sample import seeds_to_decide, sign_flip, skew_factor, two_sample_permutation  # noqa: F401
