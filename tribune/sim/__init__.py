"""Device simulators: stand-ins for real projectors, boards and switchers in tests and demos.

Each simulator is written from the manufacturer's protocol document (cited in its module),
never from tribune's device profiles, and serves a real TCP port and/or a real pty::

    async with start_simulator("pjlink", tcp=("127.0.0.1", 0), speed=10, password="x") as sim:
        sim.port, sim.state.input, sim.sim.power.state
        sim.faults.drop = 2            # drop the next two replies
        sim.faults.busy = True         # answer busy until cleared
        await sim.restart_tcp()        # the device reboots; same port

    async with start_simulator("nec-projector", pty=True, link="/tmp/nec", baud=38400) as sim:
        sim.path                       # the pty slave; /tmp/nec points at it
        sim.unplug(); sim.replug()     # the adapter goes away and comes back (new pty)

`speed` divides every real-device duration (warm-up, cool-down, idle timeouts). The ids and
their classes are in `SIMULATORS`; `tribune sim ID ...` serves one from the command line.
"""

from __future__ import annotations

from tribune.sim.base import Faults, LineSettings, Power, Session, Simulator
from tribune.sim.registry import SIMULATORS
from tribune.sim.runner import RunningSimulator, launch_simulator, start_simulator

__all__ = [
    "SIMULATORS",
    "Faults",
    "LineSettings",
    "Power",
    "RunningSimulator",
    "Session",
    "Simulator",
    "launch_simulator",
    "start_simulator",
]
