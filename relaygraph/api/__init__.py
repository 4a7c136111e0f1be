"""An HTTP API that LangGraph's own client (``langgraph-sdk``) speaks: ``relaygraph serve``.

The server holds no run state: run records, event streams and thread records live in
Redis, so any number of replicas can serve the same fleet (see docs/api.md).
"""

from relaygraph.api.app import create_app
from relaygraph.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
