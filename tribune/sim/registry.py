"""The simulators by id: `SIMULATORS["pjlink"]` is the PJLink projector class."""

from __future__ import annotations

from typing import Any

from tribune.sim.base import Simulator
from tribune.sim.pjlink import PjlinkSimulator

SIMULATORS: dict[str, type[Simulator[Any]]] = {cls.id: cls for cls in (PjlinkSimulator,)}
