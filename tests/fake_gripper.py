"""A ROS-free stand-in for franka_gripper's grasp/move action servers (ccol_policy.gripper.GripperBackend).

It applies franka_gripper's result rule (`grasp_succeeds`: libfranka's epsilon window; franka_gripper aborts the
goal with `success` false and an empty `error` when the grasp returns false) to fingers that close from their
current width until they stall on the object between them (or on each other with none)."""

from __future__ import annotations

import numpy as np

from ccol_policy.gripper import FrankaGripper, grasp_succeeds


class FakeGraspServer:
    def __init__(self, object_width: float | None, width: float = 0.08) -> None:
        self.object_width = object_width  # m; None: nothing between the fingers
        self.width = width  # the fingers' measured width (m)
        self.error = ""
        self.results: list[tuple[str, str, float, bool]] = []  # (action, "succeeded"/"aborted", final width, success)

    def ready(self) -> bool:
        return True

    def grasp(self, width: float, epsilon_inner: float, epsilon_outer: float, speed: float, force: float) -> None:
        assert speed > 0 and force > 0, (speed, force)
        obj = self.object_width
        if obj is not None and obj < self.width:
            self.width = obj  # the fingers stall on the object, whatever width was commanded (the case)
        else:
            self.width = max(min(width, self.width), 0.0)
        success = grasp_succeeds(width, epsilon_inner, epsilon_outer, self.width)
        self.results.append(("grasp", "succeeded" if success else "aborted", self.width, success))

    def move(self, width: float, speed: float) -> None:
        obj = self.object_width
        self.width = max(width, obj) if obj is not None and width < self.width else width
        self.results.append(("move", "succeeded", self.width, True))


def close_on(gripper: FrankaGripper, server: FakeGraspServer, object_width: float) -> None:
    """The policy's close: predicted widths falling from open (0.08) towards what the demonstrations measured on
    the object, the measured width following the fake fingers."""
    for predicted in np.linspace(0.08, object_width, 12):
        gripper.command(float(predicted), server.width)
