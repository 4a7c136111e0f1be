"""The suite's xdist groups hold: tests that share one fleet or server run on one worker.

pytest 9.2 with pytest-xdist 3.8 silently drops the groups (xdist issue 1386); every fleet of a
group is then started once per worker and the suite slows down without failing.
"""

from __future__ import annotations

import pytest


@pytest.mark.xdist_group("xdist-group-check")
def test_loadgroup_marks_the_node_id_with_its_group(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not running under --dist loadgroup")
    assert request.node.nodeid.endswith("@xdist-group-check"), request.node.nodeid
