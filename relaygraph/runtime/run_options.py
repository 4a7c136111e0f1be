"""The run arguments of ``invoke`` / ``stream`` relaygraph does not implement: refused.

LangGraph's ``invoke`` and ``stream`` take more keyword arguments than relaygraph implements
and silently ignore ones they do not know. relaygraph accepts an argument only when it
behaves as LangGraph's does: the others raise ``NotImplementedError`` naming the argument,
and an unknown one is a ``TypeError`` (docs/deviations.md #8), so a run never goes ahead
with an option silently switched off.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_run_options"]

#: LangGraph argument -> the values relaygraph accepts (it behaves as LangGraph then).
_ACCEPTED: dict[str, tuple[Any, ...]] = {
    # relaygraph writes each step's checkpoint before the next step starts ("sync"); an
    # "async" run ends in the same stored state, only never later.
    "durability": (None, "sync", "async"),
    "checkpoint_during": (None, True),  # LangGraph's deprecated spelling of durability
    "debug": (None, False),  # LangGraph prints to the console; use stream_mode="debug"
    "print_mode": (None, (), []),
    "output_keys": (None,),
}

_WHY: dict[str, str] = {
    "durability": "only 'sync' and 'async' (every step is saved before the next one)",
    "checkpoint_during": "only True (every step is saved before the next one)",
    "debug": "console printing is not implemented; use stream_mode='debug'",
    "print_mode": "console printing is not implemented; stream the mode instead",
    "output_keys": "pick the keys from the result (or a 'values' chunk) instead",
}


def check_run_options(method: str, options: dict[str, Any]) -> None:
    """Refuse what is left of a run's keyword arguments after the implemented ones.

    ``method`` names the caller in the errors (``"invoke"``, ``"stream"``, ...).

    >>> check_run_options("invoke", {"durability": "sync"})
    >>> check_run_options("invoke", {"output_keys": "n"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    NotImplementedError: invoke(output_keys='n') is not implemented by relaygraph: ...
    """
    unknown = sorted(set(options) - set(_ACCEPTED) - {"stream_mode", "recursion_limit"})
    if unknown:
        raise TypeError(f"{method}() got unexpected keyword arguments: {unknown}")
    for name, value in options.items():
        if name == "recursion_limit":  # relaygraph's own shortcut for the config key
            continue
        if name == "stream_mode":  # invoke's: LangGraph returns a list of chunks otherwise
            if value not in (None, "values"):
                raise NotImplementedError(
                    f"{method}(stream_mode={value!r}) is not implemented by relaygraph: "
                    "use stream() for chunks of other modes"
                )
        elif not any(value == ok and type(value) is type(ok) for ok in _ACCEPTED[name]):
            raise NotImplementedError(
                f"{method}({name}={value!r}) is not implemented by relaygraph: {_WHY[name]}"
            )
