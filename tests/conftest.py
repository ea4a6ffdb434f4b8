"""Session-wide pytest hooks."""

from __future__ import annotations

import os
import sys

_EXIT = {"status": 0}


def pytest_sessionfinish(session, exitstatus) -> None:
    _EXIT["status"] = int(exitstatus)


def pytest_unconfigure(config) -> None:
    """After the summary is printed, leave at once when Ray ran in this process (run_sweep,
    the two-node Cluster): Ray's C++ core has aborted in static destructors at interpreter
    exit (std::bad_alloc, exit 134) after every test had passed. Nothing is left to run."""
    if "ray" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT["status"])
