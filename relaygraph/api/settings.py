"""Configuration of the API server: the workers' settings plus the API key."""

from __future__ import annotations

from pydantic import Field, SecretStr

from relaygraph.workers.settings import WorkerSettings

__all__ = ["ApiSettings"]


class ApiSettings(WorkerSettings):
    """:class:`WorkerSettings` (Redis, graphs, store) and ``RELAYGRAPH_API_KEY``.

    >>> ApiSettings(api_key=None).api_key is None
    True
    """

    api_key: SecretStr | None = Field(
        None, description="when set, every route but /ok needs this value as x-api-key"
    )
