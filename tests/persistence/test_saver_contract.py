"""Runs the saver conformance suite (saver_contract.py) against every backend_*.py factory."""

from .saver_contract import *  # noqa: F403
