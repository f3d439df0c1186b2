"""SearchFlow Event Generator: simulated travel-search traffic as JSON lines and Redis Streams.

The library twin of the command is ``from src import generate, Settings``. Names are
imported on first use, so ``python -m src.main --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .early import install as _install_early

# First thing of `python -m src.main`, before any heavy import: quiet signals, one-line memory errors.
_install_early()

__version__ = "0.2.0"
__all__ = ["GenerateResult", "Settings", "SettingsError", "__version__", "generate", "load_settings"]

if TYPE_CHECKING:
    from .api import GenerateResult, generate
    from .config import Settings, SettingsError, load_settings

_LAZY = {
    "generate": "api",
    "GenerateResult": "api",
    "Settings": "config",
    "SettingsError": "config",
    "load_settings": "config",
}


def __getattr__(name: str) -> Any:
    """Import the public names lazily (PEP 562)."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
