"""Configuration of the API server: the workers' settings plus the API key."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

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

    api_sweep_interval: float = Field(
        60.0, gt=0, description="seconds between housekeeping rounds (TTLs, stateless threads)"
    )

    @field_validator("api_key")
    @classmethod
    def _not_the_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        # deploy/'s Secret ships a placeholder: an API "protected" by a published key is
        # open, so refuse to start with it rather than serve.
        if value is not None and value.get_secret_value().strip().lower() in _PLACEHOLDERS:
            raise ValueError(
                "RELAYGRAPH_API_KEY is the shipped placeholder: set a real key "
                "(e.g. $(openssl rand -hex 32)) or unset it"
            )
        return value


_PLACEHOLDERS = frozenset({"change-me", "changeme", "change_me"})
