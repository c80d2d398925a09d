"""ccol_msgs builds with the wheels' rosidl tool chain where cmake and a C compiler exist."""

from __future__ import annotations

import shutil

import pytest


def test_ccol_msgs_importable_where_it_can_be_built() -> None:
    if not (shutil.which("cmake") and shutil.which("cc")):
        pytest.skip("cmake or a C compiler is missing: ccol_msgs cannot be built here; nodes use standard types")
    from ccol_msgs.msg import ActionChunk, PolicyStatus

    msg = ActionChunk(chunk_size=2, action_dim=1, actions=[0.5, 0.25], joint_names=["fr3_joint1"])
    assert list(msg.actions) == [0.5, 0.25]
    assert PolicyStatus(hold_reason="disabled").hold_reason == "disabled"
