"""Helpers for testing graphs offline (no network, no provider keys)."""

from __future__ import annotations

from relaygraph.testing.chat_models import ScriptedChatModel

__all__ = ["ScriptedChatModel"]
