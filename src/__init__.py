"""SearchFlow Event Generator."""

from .early import install as _install_early

# First thing of `python -m src.main`, before any heavy import: quiet signals, one-line memory errors.
_install_early()
