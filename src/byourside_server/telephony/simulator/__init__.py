"""The built-in phone simulator: scenarios as data, played on a virtual timeline."""

from byourside_server.telephony.simulator.provider import SimulatedLine, SimulatorTelephony
from byourside_server.telephony.simulator.scenarios import Persona, Scenario, ScenarioBook, ScenarioError, load_scenarios

__all__ = ["Persona", "Scenario", "ScenarioBook", "ScenarioError", "SimulatedLine", "SimulatorTelephony", "load_scenarios"]
