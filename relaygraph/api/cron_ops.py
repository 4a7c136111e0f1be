"""The API's cron operations (part of :class:`relaygraph.api.backend.Backend`): create,
read, update, search and fire crons over :class:`relaygraph.api.crons.CronStore`."""

from __future__ import annotations

import logging
from typing import Any

from relaygraph.api.crons import CronError, CronStore, check_schedule, cron_end, new_cron, zone
from relaygraph.api.encode import iso
from relaygraph.api.errors import ApiError, not_found
from relaygraph.api.housekeeping import delete_when_over
from relaygraph.api.paging import sorted_page
from relaygraph.api.schemas import CronCreate, CronSearch, CronUpdate, RunCreate
from relaygraph.workers.threads import now_ms

__all__ = ["CRON_RUN_FIELDS", "CronOperations"]

log = logging.getLogger("relaygraph.api")

CRON_RUN_FIELDS = (
    "input", "config", "context", "metadata", "interrupt_before", "interrupt_after",
    "multitask_strategy", "stream_mode", "stream_subgraphs",
)  # fmt: skip
"""A cron's run payload: the fields of each run it submits."""


class CronOperations:
    """Crons. Mixed into the Backend, whose assistants, threads and runs it uses."""

    redis: Any
    records: Any
    crons: CronStore
    assistant_store: Any

    def create_cron(self, thread_id: str | None, body: CronCreate) -> dict[str, Any]:
        """A cron of an assistant on a thread (or each run on a new thread); 404 for an
        unknown assistant or thread, 422 naming a bad schedule, timezone or field."""
        if body.webhook:
            raise ApiError(422, "webhook: not supported (runs here call no webhooks)")
        assistant = self.assistant(body.assistant_id)
        self.graph_name(body.assistant_id, assistant)
        if thread_id is not None:
            self.require_thread(thread_id)
        fields = body.model_dump(include=set(CRON_RUN_FIELDS))
        try:
            cron = new_cron(
                assistant["assistant_id"],
                thread_id,
                body.schedule,
                fields,
                timezone=body.timezone,
                end_time=body.end_time,
                enabled=True if body.enabled is None else body.enabled,
                on_run_completed=body.on_run_completed,
                metadata=body.metadata or {},
            )
        except CronError as exc:
            raise ApiError(422, str(exc)) from exc
        return self.crons.save(cron)

    def cron(self, cron_id: str) -> dict[str, Any]:
        """The cron; 404."""
        found = self.crons.get(cron_id)
        if found is None:
            raise not_found("cron", cron_id)
        return found

    def update_cron(self, cron_id: str, body: CronUpdate) -> dict[str, Any]:
        """The cron with the fields sent changed, its next fire computed again; 404, 422."""
        changes = body.model_dump(exclude_unset=True)
        if changes.get("webhook"):
            raise ApiError(422, "webhook: not supported (runs here call no webhooks)")
        cron = {k: v for k, v in self.cron(cron_id).items() if k != "next_run_date"}
        payload = dict(cron["payload"])
        for field in CRON_RUN_FIELDS:
            if field in changes:
                payload[field] = changes[field]
        cron["payload"] = payload
        if "metadata" in changes:
            cron["metadata"] = changes["metadata"] or {}
        for field in ("schedule", "timezone", "enabled"):
            if changes.get(field) is not None:
                cron[field] = changes[field]
        if "end_time" in changes:
            cron["end_time"] = cron_end(changes["end_time"])
        if changes.get("on_run_completed") and cron["thread_id"] is None:
            cron["on_run_completed"] = changes["on_run_completed"]
        try:
            check_schedule(cron["schedule"])
            zone(cron["timezone"])
        except CronError as exc:
            raise ApiError(422, str(exc)) from exc
        cron["updated_at"] = iso(now_ms())
        return self.crons.save(cron)

    def delete_cron(self, cron_id: str) -> None:
        """Delete the cron (runs it submitted are left as they are); 404."""
        if not self.crons.delete(cron_id):
            raise not_found("cron", cron_id)

    def search_crons(self, body: CronSearch) -> list[dict[str, Any]]:
        """Crons matching assistant, thread, enabled and metadata, sorted, one page."""
        page, _more = sorted_page(self._matching_crons(body), "cron_id", body)
        return page

    def count_crons(self, body: CronSearch) -> int:
        """How many crons match."""
        return len(self._matching_crons(body))

    def _matching_crons(self, body: CronSearch) -> list[dict[str, Any]]:
        assistant = (
            self.assistant_store.resolve(body.assistant_id) if body.assistant_id else None
        )
        return [
            c
            for c in self.crons.all()
            if (assistant is None or c["assistant_id"] == assistant)
            and (body.thread_id is None or c["thread_id"] == body.thread_id)
            and (body.enabled is None or c["enabled"] == body.enabled)
            and all(c["metadata"].get(k) == v for k, v in (body.metadata or {}).items())
        ]

    def fire_cron(self, cron: dict[str, Any]) -> None:
        """Submit one run of the cron (the scheduler claimed this fire)."""
        thread_id = cron["thread_id"]
        if thread_id is not None and self.records.get(thread_id) is None:
            log.warning("cron %s: thread %s is gone; the cron goes too", cron["cron_id"], thread_id)
            self.crons.delete(cron["cron_id"])
            return
        payload = {k: v for k, v in cron["payload"].items() if v is not None}
        payload["metadata"] = {**(payload.get("metadata") or {}), "cron_id": cron["cron_id"]}
        body = RunCreate(assistant_id=cron["assistant_id"], **payload)
        run = self.create_run(thread_id, body)
        if thread_id is None and cron["on_run_completed"] != "keep":
            delete_when_over(self.redis, run["thread_id"])
