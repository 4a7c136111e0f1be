"""The API's assistant operations (part of :class:`relaygraph.api.backend.Backend`): each
registered graph's default assistant and the ones created, over
:class:`relaygraph.api.assistants.AssistantStore`."""

from __future__ import annotations

import contextlib
from typing import Any

from relaygraph.api.assistants import AssistantConflict, AssistantStore
from relaygraph.api.errors import ApiError, not_found
from relaygraph.api.schemas import AssistantCreate, AssistantUpdate

__all__ = ["AssistantOperations"]


class AssistantOperations:
    """Assistants: read, create, update (versions), delete. Mixed into the Backend, whose
    client, threads and store it uses."""

    client: Any
    assistant_store: AssistantStore

    def assistants(self) -> list[dict[str, Any]]:
        """Every assistant: each registered graph's default and the ones created."""
        return self.assistant_store.all()

    def assistant(self, assistant_id: str) -> dict[str, Any]:
        """The assistant (its current version) by id, or by graph name as the SDK allows;
        404."""
        found = self.assistant_store.get(assistant_id)
        if found is None:
            raise not_found("assistant", assistant_id)
        return found

    def graph_name(self, assistant_id: str, assistant: dict[str, Any] | None = None) -> str:
        """The registered graph an assistant id (or a graph name) runs; 404."""
        graph = (assistant or self.assistant(assistant_id))["graph_id"]
        if graph not in self.client.registry.names():
            raise ApiError(
                404, f"assistant {assistant_id!r} runs graph {graph!r}, which is not registered"
            )
        return graph

    def create_assistant(self, body: AssistantCreate) -> dict[str, Any]:
        """Store an assistant of a registered graph; 404 for an unknown graph, 409 for a
        taken id (unless ``if_exists='do_nothing'``)."""
        self._require_graph(body.graph_id)
        version = {
            "graph_id": body.graph_id,
            "config": body.config or {},
            "context": body.context or {},
            "metadata": body.metadata or {},
            "name": body.name or "Untitled",
            "description": body.description,
        }
        try:
            return self.assistant_store.create(version, body.assistant_id, body.if_exists)
        except AssistantConflict as exc:
            raise ApiError(409, str(exc)) from exc

    def update_assistant(self, assistant_id: str, body: AssistantUpdate) -> dict[str, Any]:
        """A new current version with the fields sent; 404 for an unknown assistant or
        graph."""
        changes = body.model_dump(exclude_unset=True)
        for field in ("config", "context", "metadata"):
            if field in changes and changes[field] is None:
                changes[field] = {}
        if changes.get("graph_id") is None:
            changes.pop("graph_id", None)
        else:
            self._require_graph(changes["graph_id"])
        updated = self.assistant_store.update(assistant_id, changes)
        if updated is None:
            raise not_found("assistant", assistant_id)
        return updated

    def delete_assistant(self, assistant_id: str, delete_threads: bool) -> None:
        """Drop a created assistant (with ``delete_threads``, also the threads whose
        metadata names it); 404 unknown, 409 a graph's default."""
        resolved = self.assistant(assistant_id)["assistant_id"]
        if delete_threads:
            mine = self._matching({"assistant_id": resolved}, None, None)
            with contextlib.closing(mine) as found:
                doomed = [thread_id for thread_id, _ in found]
            for thread_id in doomed:
                self.delete_thread(thread_id)
        try:
            if not self.assistant_store.delete(resolved):
                raise not_found("assistant", assistant_id)
        except AssistantConflict as exc:
            raise ApiError(409, str(exc)) from exc

    def assistant_versions(self, assistant_id: str) -> list[dict[str, Any]]:
        """The assistant's versions, newest first; 404."""
        versions = self.assistant_store.versions(assistant_id)
        if versions is None:
            raise not_found("assistant", assistant_id)
        return versions

    def set_latest_assistant(self, assistant_id: str, version: int) -> dict[str, Any]:
        """Make an earlier (or later) version current; 404 for an unknown one."""
        self.assistant(assistant_id)
        found = self.assistant_store.set_latest(assistant_id, version)
        if found is None:
            raise ApiError(404, f"assistant {assistant_id!r} has no version {version}")
        return found

    def _require_graph(self, graph: str) -> None:
        if graph not in self.client.registry.names():
            names = ", ".join(sorted(self.client.registry.names()))
            raise ApiError(404, f"graph {graph!r} is not registered (registered: {names})")
