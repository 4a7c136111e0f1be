"""One turn of an agent thread in a process of its own (test_durable_agents' restarts).

``python -m tests.agents.restart_child KIND CONN STEP``: open the saver of ``KIND``
(sqlite, redis or postgres) on ``CONN``, build the agent afresh and play ``STEP``
(``turn0``, ``turn1``: a user turn; ``pause``: the first turn up to
``interrupt_before=["tools"]``; ``resume``: go on from the pause); print the observation as
JSON. Nothing of the thread is in this process's memory before the saver reads it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_core.messages import HumanMessage

from tests.agents import scenarios
from tests.agents.libs import RELAYGRAPH, observe

TURNS = ("What are 40 + 2 and 6 * 7?", "And 1 + 1?")


def open_saver(kind: str, conn: str) -> Any:
    """The saver of ``kind`` on ``conn``, as a context manager."""
    if kind == "sqlite":
        from relaygraph.persistence.sqlite import SqliteSaver

        return SqliteSaver.from_conn_string(conn)
    if kind == "redis":
        from relaygraph.persistence.redis import RedisSaver

        return RedisSaver.from_conn_string(conn)
    from relaygraph.persistence.postgres import PostgresSaver

    return PostgresSaver.from_conn_string(conn)


def play(kind: str, conn: str, step: str) -> dict[str, Any]:
    kwargs = {"interrupt_before": ["tools"]} if step in ("pause", "resume") else {}
    cfg = scenarios.config()
    with open_saver(kind, conn) as saver:
        graph = RELAYGRAPH.create_react_agent(
            scenarios.agent_script(),
            [scenarios.add, scenarios.multiply],
            checkpointer=saver,
            **kwargs,
        )
        if step == "resume":
            result = graph.invoke(None, cfg)
        else:
            text = TURNS[1] if step == "turn1" else TURNS[0]
            result = graph.invoke({"messages": [HumanMessage(text)]}, cfg)
        return observe(graph, cfg, result)


if __name__ == "__main__":
    print(json.dumps(play(*sys.argv[1:4])))
