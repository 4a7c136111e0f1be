"""Differential tests: the same graphs run on LangGraph and on relaygraph must agree."""
