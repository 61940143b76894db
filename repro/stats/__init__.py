"""Statistics as pure functions on numbers: the check kinds, small-sample tests, multiplicity, sequential looks."""
from .checks import *  # noqa: F401,F403
from .checks import DERIVED, KEY_HELP, holm, skew_factor  # noqa: F401
