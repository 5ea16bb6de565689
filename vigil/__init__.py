"""Vigil core: settings, the store, the CLI and the hospital-network simulator.

The capability packages (``connectors``, ``models``, ``monitors``, ``dashboard``, ``reports``)
build on this one; it depends on none of them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vigil")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
