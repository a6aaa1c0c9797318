"""Emulated GPU nodes for the e2e control plane (``e2e/README.md``, *The emulated GPU cluster*).

kwok Node objects from a scenario (:mod:`e2e.emulation.scenario_nodes`); the emulation
controller (:mod:`e2e.emulation.controller`) that queues bound AIGC pods at their node's model
server (:mod:`e2e.emulation.node_queue` over the simulator's ``NodeServer``) and writes the
modelled times into ``emulation.ladts.io/*`` annotations (:mod:`e2e.emulation.annotations`),
which kwok's stages (:mod:`e2e.emulation.kwok_stages`) act on; the shared cluster clock
(:mod:`e2e.emulation.clock`), records (:mod:`e2e.emulation.records`), raw watches
(:mod:`e2e.emulation.watch`), and a fake dcgm-exporter / node-exporter fed by the emulation
state (:mod:`e2e.emulation.exporter`).
"""
