"""A ROS-free stand-in for franka_gripper's grasp/move action servers (ccol_policy.gripper.GripperBackend).

It applies franka_gripper's result rule (`grasp_succeeds`: libfranka's epsilon window; franka_gripper aborts the
goal with `success` false and an empty `error` when the grasp returns false) to fingers that close from their
current width until they stall on the object between them (or on each other with none). Like franka_gripper, a
grasp on nothing closes to 0 m and reports success when 0 lies in the window (the default one, [0, 0.08] m, does).
Results come back through the backend attributes `ActionBackend` fills (`grasp_sent`, `last_grasp_id`,
`last_grasp`, `last_error`): at once, or with `deferred=True` only when `finish_grasps()` is called (a result
still on its way)."""

from __future__ import annotations

import numpy as np

from ccol_policy.gripper import FrankaGripper, grasp_succeeds


class FakeGraspServer:
    def __init__(self, object_width: float | None, width: float = 0.08, deferred: bool = False) -> None:
        self.object_width = object_width  # m; None: nothing between the fingers
        self.width = width  # the fingers' measured width (m)
        self.error = ""
        self.grasp_error = ""  # when set, grasps fail with this error (a libfranka exception franka_gripper reports)
        self.deferred = deferred
        self.results: list[tuple[str, str, float, bool]] = []  # (action, "succeeded"/"aborted", final width, success)
        self.grasp_sent = 0
        self.last_grasp_id = 0
        self.last_grasp: bool | None = None
        self.last_error = ""
        self._pending: list[tuple[int, bool, str]] = []  # deferred grasp results (goal id, success, error)

    def ready(self) -> bool:
        return True

    def grasp(self, width: float, epsilon_inner: float, epsilon_outer: float, speed: float, force: float) -> None:
        assert speed > 0 and force > 0, (speed, force)
        self.grasp_sent += 1
        if self.grasp_error:
            success, error = False, self.grasp_error  # the fingers do not move
        else:
            obj = self.object_width
            if obj is not None and obj < self.width:
                self.width = obj  # the fingers stall on the object, whatever width was commanded (the case)
            else:
                self.width = max(min(width, self.width), 0.0)  # nothing between them: they close on each other
            success, error = grasp_succeeds(width, epsilon_inner, epsilon_outer, self.width), ""
        self.results.append(("grasp", "succeeded" if success else "aborted", self.width, success))
        self._pending.append((self.grasp_sent, success, error))
        if not self.deferred:
            self.finish_grasps()

    def finish_grasps(self) -> None:
        """Deliver the grasp results still on their way, oldest first."""
        for goal_id, success, error in self._pending:
            if goal_id >= self.last_grasp_id:
                self.last_grasp, self.last_error, self.last_grasp_id = success, error, goal_id
        self._pending.clear()

    def move(self, width: float, speed: float) -> None:
        obj = self.object_width
        self.width = max(width, obj) if obj is not None and width < self.width else width
        self.results.append(("move", "succeeded", self.width, True))


def close_on(gripper: FrankaGripper, server: FakeGraspServer, object_width: float) -> None:
    """The policy's close: predicted widths falling from open (0.08) towards what the demonstrations measured on
    the object, the measured width following the fake fingers."""
    for predicted in np.linspace(0.08, object_width, 12):
        gripper.command(float(predicted), server.width)
