"""A tool-using LLM agent with long-term memory, as the workers run it.

``create_react_agent`` builds the loop: a model node that calls the chat model on the
state's messages, and a ``ToolNode`` that runs the tools it asks for, until the model answers
without a tool call. Two tools read and write the memory store (namespace
``("memories", user_id)``), so what a user tells the agent in one thread is there in every
other: ``remember`` stores a fact, ``recall`` searches by meaning when the store has an
embedding index (by keyword otherwise).

The model is :class:`OfflineChatModel`, a local rule-based chat model that calls the tools
as a provider's model would and streams its answers word by word, so the demo and the tests
need no network. Use a real provider by changing one line::

    model = ChatOpenAI(model="gpt-4o-mini")  # pip install langchain-openai

Register it with ``RELAYGRAPH_GRAPHS="agent=relaygraph.examples.agent:graph"`` (the workers
need ``RELAYGRAPH_STORE_URL``; ``RELAYGRAPH_STORE_EMBED=default RELAYGRAPH_STORE_FIELDS=fact``
for recall by meaning).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool

from relaygraph.prebuilt import InjectedStore, create_react_agent
from relaygraph.testing.chat_models import ScriptedChatModel

PROMPT = "You are a helpful assistant with a long-term memory. Use your tools."


def _namespace(config: RunnableConfig) -> tuple[str, str]:
    return ("memories", str((config.get("configurable") or {}).get("user_id", "default")))


@tool
def remember(fact: str, config: RunnableConfig, store: Annotated[Any, InjectedStore()]) -> str:
    """Store a fact about the user in long-term memory."""
    store.put(_namespace(config), str(uuid.uuid4()), {"fact": fact})
    return f"Stored: {fact}"


@tool
def recall(query: str, config: RunnableConfig, store: Annotated[Any, InjectedStore()]) -> str:
    """Search long-term memory for facts about the user that match the query."""
    hits = store.search(_namespace(config), query=query, limit=3)
    return "; ".join(hit.value["fact"] for hit in hits) if hits else "nothing stored yet"


_REMEMBER = re.compile(r"^\s*(?:please\s+)?remember(?:\s+that)?\s+(?P<fact>.+?)\s*[.!]?\s*$", re.I)
_RECALL = re.compile(r"what do you (?:know|remember) about\s+(?P<query>.+?)\s*\??\s*$", re.I)


class OfflineChatModel(ScriptedChatModel):
    """A local chat model for offline agents: decides tool calls from the user's words.

    "remember (that) X" calls ``remember(fact=X)``; "what do you know/remember about X"
    calls ``recall(query=X)``; after a tool result it answers from it; anything else gets a
    short reply. Replies stream word by word like a provider's (see
    :class:`~relaygraph.testing.chat_models.ScriptedChatModel`).
    """

    responses: list[AIMessage] = []

    def reply_for(self, messages: Sequence[BaseMessage]) -> AIMessage:
        last = messages[-1] if messages else HumanMessage("")
        if isinstance(last, ToolMessage):
            if last.name == "remember":
                return AIMessage("Got it, I will remember that.")
            return AIMessage(f"Here is what I remember: {last.content}.")
        text = last.text if isinstance(last, BaseMessage) else str(last)
        call_id = f"call_{uuid.uuid5(uuid.NAMESPACE_URL, text).hex[:12]}"
        if match := _REMEMBER.match(text):
            return _tool_call("remember", {"fact": match["fact"]}, call_id)
        if match := _RECALL.search(text):
            return _tool_call("recall", {"query": match["query"]}, call_id)
        return AIMessage("Tell me something to remember, or ask what I remember about a topic.")


def _tool_call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


model = OfflineChatModel()
graph = create_react_agent(model, [remember, recall], prompt=PROMPT)
"""Compiled without a checkpointer: workers bind their RedisSaver and RedisStore."""
