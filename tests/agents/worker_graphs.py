"""Agent graphs the worker-fleet tests run; workers import them by name (REGISTRY)."""

from __future__ import annotations

from relaygraph.prebuilt import create_react_agent

from . import scenarios
from .libs import RELAYGRAPH

react = create_react_agent(scenarios.agent_script(), [scenarios.add, scenarios.multiply])
react_v1 = create_react_agent(
    scenarios.agent_script(), [scenarios.add, scenarios.multiply], version="v1"
)
paused = create_react_agent(
    scenarios.agent_script(), [scenarios.add, scenarios.multiply], interrupt_before=["tools"]
)
loop = scenarios.hand_loop_graph(
    RELAYGRAPH, scenarios.loop_script(), [scenarios.add, scenarios.multiply]
)
command = scenarios.command_tool_graph(RELAYGRAPH).builder.compile()


def _injected():
    class State(RELAYGRAPH.AgentState):
        user: str

    model = scenarios.ScriptedChatModel(
        responses=scenarios.injected_script(),
    )
    return create_react_agent(model, scenarios.injected_tools(RELAYGRAPH), state_schema=State)


injected = _injected()

NAMES = ("react", "react_v1", "paused", "loop", "command", "injected")
REGISTRY = ",".join(f"{name}=tests.agents.worker_graphs:{name}" for name in NAMES)
