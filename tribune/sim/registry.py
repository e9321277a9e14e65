"""The simulators by id: `SIMULATORS["pjlink"]` is the PJLink projector class."""

from __future__ import annotations

from typing import Any

from tribune.sim.base import Simulator
from tribune.sim.cisco import CiscoSimulator
from tribune.sim.epson import EpsonSimulator
from tribune.sim.extron import ExtronSimulator
from tribune.sim.kramer import KramerSimulator
from tribune.sim.lg import LgSimulator
from tribune.sim.nec import NecSimulator
from tribune.sim.panasonic import PanasonicSimulator
from tribune.sim.pjlink import PjlinkSimulator
from tribune.sim.samsung import SamsungSimulator
from tribune.sim.smart import SmartSimulator
from tribune.sim.sony import SonySimulator

SIMULATORS: dict[str, type[Simulator[Any]]] = {
    cls.id: cls
    for cls in (
        PjlinkSimulator,
        EpsonSimulator,
        NecSimulator,
        ExtronSimulator,
        KramerSimulator,
        SmartSimulator,
        SamsungSimulator,
        SonySimulator,
        PanasonicSimulator,
        LgSimulator,
        CiscoSimulator,
    )
}
