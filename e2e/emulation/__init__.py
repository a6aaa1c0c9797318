"""Emulated GPU nodes for the e2e control plane.

kwok Node objects from a scenario (:mod:`e2e.emulation.scenario_nodes`), an emulation
controller that moves AIGC pods through their lifecycle in cluster time with the simulator's
single-node service model (:mod:`e2e.emulation.controller`), and a fake dcgm-exporter /
node-exporter fed by the emulation state (:mod:`e2e.emulation.exporter`).
"""
