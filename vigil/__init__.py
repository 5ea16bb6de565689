"""Vigil core: settings, the store, the CLI and the hospital-network simulator.

The capability packages (``connectors``, ``models``, ``monitors``, ``dashboard``, ``reports``)
build on this one. The few core modules that join them up — the case-frame loader
(``vigil.caseframe``), the monitor runner (``vigil.monitoring``), alert CRUD (``vigil.alerts``)
and the demo (``vigil.demo``) — are the I/O edge where store and pure monitors meet; the
simulator shares only the monitors' subgroup contract (``monitors.frame``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vigil")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
