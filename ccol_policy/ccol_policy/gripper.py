"""The Franka Hand through franka_gripper's actions (franka_msgs): grasp with force when closing, move when opening.

Used by policy_node (predicted widths) and recorder_node (the operator's keys or pedal). A plain Move to a small
width applies no grasp force; upstream's own gripper_action switches to Grasp when closing, and so do we.
Goals go out on transitions only (a new grasp when the hand should close, a move when the target width opens by
more than `min_change`), never at the control rate.

A Grasp closes the fingers towards its `width` until they reach it or stall on an object, then franka_gripper
reports success only if the final width lies in [width - epsilon.inner, width + epsilon.outer] (libfranka
`Gripper::grasp`; franka_gripper aborts the goal with `success` false otherwise). So the close command is a grasp
at `grasp_width` (0: close until contact) with a window that must cover every object the hand can hold, 0 to its
maximum width; the predicted width only decides *when* to close, not where the fingers stop.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)


def grasp_succeeds(width: float, epsilon_inner: float, epsilon_outer: float, final_width: float) -> bool:
    """franka_gripper's (libfranka's) success rule for a Grasp goal, given the fingers' final width (all in m)."""
    return width - epsilon_inner <= final_width <= width + epsilon_outer


def check_grasp_window(width: float, epsilon_inner: float, epsilon_outer: float, max_width: float) -> None:
    """Raise ValueError unless a grasp at `width` succeeds on any object from 0 to `max_width` (the hand's span)."""
    if not (
        grasp_succeeds(width, epsilon_inner, epsilon_outer, 0.0)
        and grasp_succeeds(width, epsilon_inner, epsilon_outer, max_width)
    ):
        raise ValueError(
            f"grasp width {width} m with epsilon inner {epsilon_inner}, outer {epsilon_outer} succeeds only for "
            f"objects in [{width - epsilon_inner:.3f}, {width + epsilon_outer:.3f}] m, not 0..{max_width} m: "
            f"use gripper_grasp_width_m 0 and gripper_epsilon_outer_m >= {max_width}"
        )


class GripperBackend(Protocol):
    """Where goals go: franka_gripper's action servers (`ActionBackend`) or a test double."""

    error: str

    def ready(self) -> bool: ...

    def grasp(self, width: float, epsilon_inner: float, epsilon_outer: float, speed: float, force: float) -> None: ...

    def move(self, width: float, speed: float) -> None: ...


class ActionBackend:
    """franka_msgs/action/Grasp and Move clients on `<namespace>/grasp` and `<namespace>/move`. A grasp that
    franka_gripper aborts (object outside the epsilon window, or no object) is logged and kept in `last_grasp`."""

    def __init__(self, node: Any, namespace: str) -> None:
        self.namespace = namespace
        self.error = ""
        self.last_grasp: bool | None = None  # result of the last grasp goal, None while none finished
        try:
            from franka_msgs.action import Grasp, Move  # type: ignore[import-not-found]
            from rclpy.action import ActionClient
        except ImportError:
            self.error = "franka_msgs is not installed: gripper commands are not sent (install franka_ros2's msgs)"
            self._grasp = self._move = None
            return
        self._types = (Grasp, Move)
        self._grasp = ActionClient(node, Grasp, f"{namespace}/grasp")
        self._move = ActionClient(node, Move, f"{namespace}/move")

    def ready(self) -> bool:
        if self._grasp is None:
            return False
        if not (self._grasp.server_is_ready() and self._move.server_is_ready()):
            self.error = f"gripper action servers {self.namespace}/grasp, /move not available (franka_gripper down?)"
            return False
        self.error = ""
        return True

    def grasp(self, width: float, epsilon_inner: float, epsilon_outer: float, speed: float, force: float) -> None:
        goal = self._types[0].Goal(width=width, speed=speed, force=force)
        goal.epsilon.inner, goal.epsilon.outer = epsilon_inner, epsilon_outer
        self._grasp.send_goal_async(goal).add_done_callback(self._on_grasp_accepted)

    def move(self, width: float, speed: float) -> None:
        self._move.send_goal_async(self._types[1].Goal(width=width, speed=speed))

    def _on_grasp_accepted(self, future: Any) -> None:
        handle = future.result()
        if handle is not None and handle.accepted:
            handle.get_result_async().add_done_callback(self._on_grasp_result)

    def _on_grasp_result(self, future: Any) -> None:
        result = future.result().result
        self.last_grasp = bool(result.success)
        if not result.success:
            log.warning("franka_gripper grasp failed: %s", result.error or "final width outside the epsilon window")


class FrankaGripper:
    def __init__(
        self,
        node: Any,
        namespace: str = "/franka_gripper",
        force: float = 40.0,
        epsilon_inner: float = 0.005,
        epsilon_outer: float = 0.08,
        speed: float = 0.1,
        min_change: float = 0.005,
        grasp_width: float = 0.0,
        max_width: float = 0.08,
        backend: GripperBackend | None = None,
    ) -> None:
        check_grasp_window(grasp_width, epsilon_inner, epsilon_outer, max_width)
        self.namespace = namespace.rstrip("/")
        self.force, self.speed, self.min_change = force, speed, min_change
        self.grasp_width = grasp_width
        self.epsilon = (epsilon_inner, epsilon_outer)
        self.state: str | None = None  # "grasp" or "open"
        self.last_width: float | None = None
        self.backend: GripperBackend = backend if backend is not None else ActionBackend(node, self.namespace)

    @property
    def error(self) -> str:
        return self.backend.error

    def available(self) -> bool:
        """True when franka_gripper's grasp and move servers answer; otherwise `error` says what is missing."""
        return self.backend.ready()

    def command(self, width: float, measured: float, always: bool = False) -> str | None:
        """Target width (m) given the measured one -> "grasp", "move" or None (nothing to send / no server).
        Closing sends a grasp at `grasp_width` with the configured epsilon window, whatever `width` is; after a
        grasp the hand opens only once `width` exceeds the width that triggered it by `min_change`.
        `always` sends even without a transition (an operator's key press)."""
        closing = width < measured - self.min_change
        kind = "grasp" if closing else "move"
        if not always:
            if self.state == "grasp" and width < (self.last_width or 0.0) + self.min_change:
                return None  # holding: the fingers stall on the object below the predicted width; open only
                # when the prediction rises above the width that triggered the grasp
            if not closing and self.state == "open" and abs(width - (self.last_width or 0.0)) < self.min_change:
                return None
            if not closing and self.state is None and abs(width - measured) < self.min_change:
                return None
        if not self.available():
            return None
        if kind == "grasp":
            self.backend.grasp(self.grasp_width, *self.epsilon, speed=self.speed, force=self.force)
            self.state = "grasp"
        else:
            self.backend.move(width, self.speed)
            self.state = "open"
        self.last_width = width
        return kind
