"""The Franka Hand through franka_gripper's actions (franka_msgs): grasp with force when closing, move when opening.

Used by policy_node (predicted widths) and recorder_node (the operator's keys or pedal). A plain Move to a small
width applies no grasp force; upstream's own gripper_action switches to Grasp when closing, and so do we.
Goals go out on transitions only (a new grasp when the hand should close, a move when the target width opens by
more than `min_change`), never at the control rate.
"""

from __future__ import annotations

from typing import Any


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
    ) -> None:
        self.node = node
        self.namespace = namespace.rstrip("/")
        self.force, self.speed, self.min_change = force, speed, min_change
        self.epsilon = (epsilon_inner, epsilon_outer)
        self.state: str | None = None  # "grasp" or "open"
        self.last_width: float | None = None
        self.error = ""
        try:
            from franka_msgs.action import Grasp, Move  # type: ignore[import-not-found]
            from rclpy.action import ActionClient
        except ImportError:
            self.error = "franka_msgs is not installed: gripper commands are not sent (install franka_ros2's msgs)"
            self._grasp = self._move = None
            return
        self._types = (Grasp, Move)
        self._grasp = ActionClient(node, Grasp, f"{self.namespace}/grasp")
        self._move = ActionClient(node, Move, f"{self.namespace}/move")

    def available(self) -> bool:
        """True when franka_gripper's grasp and move servers answer; otherwise `error` says what is missing."""
        if self._grasp is None:
            return False
        if not (self._grasp.server_is_ready() and self._move.server_is_ready()):
            self.error = f"gripper action servers {self.namespace}/grasp, /move not available (franka_gripper down?)"
            return False
        self.error = ""
        return True

    def command(self, width: float, measured: float, always: bool = False) -> str | None:
        """Target width (m) given the measured one -> "grasp", "move" or None (nothing to send / no server).
        `always` sends even without a transition (an operator's key press)."""
        closing = width < measured - self.min_change
        kind = "grasp" if closing else "move"
        if not always:
            if closing and self.state == "grasp":
                return None
            if not closing and self.state == "open" and abs(width - (self.last_width or 0.0)) < self.min_change:
                return None
            if not closing and self.state is None and abs(width - measured) < self.min_change:
                return None
        if not self.available():
            return None
        grasp_t, move_t = self._types
        if kind == "grasp":
            goal = grasp_t.Goal(width=max(width, 0.0), speed=self.speed, force=self.force)
            goal.epsilon.inner, goal.epsilon.outer = self.epsilon
            self._grasp.send_goal_async(goal)
            self.state = "grasp"
        else:
            self._move.send_goal_async(move_t.Goal(width=width, speed=self.speed))
            self.state = "open"
        self.last_width = width
        return kind
