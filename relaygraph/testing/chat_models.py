"""``ScriptedChatModel``: a LangChain chat model that replays a script, for offline agents.

langchain_core's fake models refuse ``bind_tools``, so no tool-calling agent can run on
them. This one accepts ``bind_tools`` and ``with_structured_output`` and answers with the
scripted ``AIMessage``s (tool calls included).

The reply is chosen by the conversation, not by a counter: the ``k``-th reply answers a
conversation holding ``k`` earlier ``AIMessage``s. So the same conversation gets the same
reply in any process (a worker fleet, a thread resumed after a restart), and the script
runs on as a thread continues.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import field_validator

__all__ = ["ScriptedChatModel"]


class ScriptedChatModel(BaseChatModel):
    """Replays ``responses`` (``AIMessage`` or text), one per model turn of a conversation.

    Streamed (``stream`` or ``stream_mode="messages"``), a reply comes word by word; its
    tool calls arrive with the last chunk.

    >>> from langchain_core.messages import HumanMessage
    >>> model = ScriptedChatModel(responses=["Hello there", "Bye"])
    >>> model.invoke([HumanMessage("hi")]).content
    'Hello there'
    >>> [c.content for c in model.stream([HumanMessage("hi")])]
    ['Hello', ' ', 'there']
    """

    responses: list[AIMessage]
    """The replies, in conversation order (a string is an ``AIMessage`` of that text)."""

    @field_validator("responses", mode="before")
    @classmethod
    def _texts_are_messages(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [AIMessage(content=v) if isinstance(v, str) else v for v in value]
        return value

    @property
    def _llm_type(self) -> str:
        return "relaygraph-scripted-chat-model"

    def reply_for(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The scripted reply to ``messages`` (a fresh copy: callers may change it)."""
        turn = sum(isinstance(m, AIMessage) for m in messages)
        if turn >= len(self.responses):
            raise ValueError(
                f"ScriptedChatModel has {len(self.responses)} replies; this conversation "
                f"already holds {turn} AI messages and asks for reply #{turn + 1}"
            )
        return self.responses[turn].model_copy(deep=True)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.reply_for(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        reply = self.reply_for(messages)
        if isinstance(reply.content, str) and reply.content:
            tokens: list[Any] = [t for t in re.split(r"(\s)", reply.content) if t]
        else:
            tokens = [reply.content]  # empty, or content blocks: sent whole
        for index, token in enumerate(tokens):
            last = index == len(tokens) - 1
            message = AIMessageChunk(content=token, id=reply.id)
            if last:  # the reply's other fields come with its last token
                message = AIMessageChunk(
                    content=token,
                    id=reply.id,
                    tool_call_chunks=[
                        {
                            "name": call["name"],
                            "args": json.dumps(call["args"]),
                            "id": call["id"],
                            "index": i,
                            "type": "tool_call_chunk",
                        }
                        for i, call in enumerate(reply.tool_calls)
                    ],
                    usage_metadata=reply.usage_metadata,
                    response_metadata=reply.response_metadata,
                    additional_kwargs=reply.additional_kwargs,
                    chunk_position="last",
                )
            chunk = ChatGenerationChunk(message=message)
            if run_manager:
                run_manager.on_llm_new_token(token if isinstance(token, str) else "", chunk=chunk)
            yield chunk

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable:
        """Bind ``tools`` as a provider would (the script decides which calls are made)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)
