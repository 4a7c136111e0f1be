"""The serializer's limits: nesting depth both ways (no SIGSEGV), RecursionError, big ints."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import msgpack
import pytest

from relaygraph.persistence.errors import SerializationError
from relaygraph.persistence.serde import MAX_DEPTH, default_serializer

serde = default_serializer


def nested_tuple(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = (value,)
    return value


def crafted_nested_tuples(depth: int) -> bytes:
    """What no dumps makes: ``depth`` tuple extensions inside one another (1.9 KB at 400)."""
    data = msgpack.packb(0)
    for _ in range(depth):
        data = msgpack.packb(msgpack.ExtType(2, b"\x91" + data))
    return data


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter: a SIGSEGV there fails the test, not pytest."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_values_up_to_the_cap_round_trip() -> None:
    value = nested_tuple(MAX_DEPTH)
    assert serde.loads(serde.dumps(value)) == value


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 200, 2000])
def test_dumps_refuses_values_nested_too_deep(depth: int) -> None:
    with pytest.raises(SerializationError, match="nests too deep") as info:
        serde.dumps(nested_tuple(depth), where="channel 'x'")
    assert "channel 'x'" in str(info.value)
    assert f"limit is {MAX_DEPTH}" in str(info.value)


def test_deep_registered_models_give_serialization_error_not_recursion_error() -> None:
    value: object = 0
    for _ in range(2000):
        value = {"inner": (value,)}
    with pytest.raises(SerializationError, match="nests too deep"):
        serde.dumps(value)


def test_deep_native_lists_give_serialization_error() -> None:
    value: object = 0
    for _ in range(2000):
        value = [value]
    with pytest.raises(SerializationError, match="recursion limit"):
        serde.dumps(value)


def test_crafted_deep_bytes_are_refused_in_process() -> None:
    data = crafted_nested_tuples(400)
    assert len(data) < 2000
    with pytest.raises(SerializationError, match="nested more than 16 deep"):
        serde.loads(data, where="channel 'messages'")


def test_crafted_deep_bytes_never_crash_the_reader() -> None:
    """The probe that killed every reader with SIGSEGV, in a process of its own."""
    result = run_python(
        f"""
        from relaygraph.persistence.errors import SerializationError
        from relaygraph.persistence.serde import default_serializer
        data = {crafted_nested_tuples(400)!r}
        try:
            default_serializer.loads(data)
        except SerializationError as exc:
            print("refused:", exc)
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "refused:" in result.stdout


def test_worst_case_at_the_cap_fits_a_thread_stack() -> None:
    """Every level at the cap also nesting lists to msgpack's own limit: written and read
    in a thread (default stack) without a crash."""
    result = run_python(
        f"""
        import threading
        from relaygraph.persistence.serde import default_serializer as serde
        value = 0
        for _ in range({MAX_DEPTH}):
            for _ in range(510):
                value = [value]
            value = (value,)
        done = []
        def work():
            data = serde.dumps(value)
            done.append(serde.dumps(serde.loads(data)) == data)  # == on values recurses
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        print(done)
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "[True]"


@pytest.mark.parametrize(
    "value",
    [2**20000, -(2**20000), 2**64, -(2**64) - 1, 10**5000],
    ids=["2^20000", "-2^20000", "2^64", "-2^64-1", "10^5000"],
)
def test_big_ints_beyond_the_digit_limit_round_trip(value: int) -> None:
    back = serde.loads(serde.dumps(value))
    assert type(back) is int and back == value


def test_big_ints_stored_as_digits_still_read() -> None:
    legacy = msgpack.packb(msgpack.ExtType(1, b"-123456789012345678901234567890"))
    assert serde.loads(legacy) == -123456789012345678901234567890
