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

That window also covers the fingers closing on nothing: they stop at ~0 m, inside [0 - inner, 0 + outer], and
franka_gripper reports success. The result therefore does not tell a miss; it only reports errors (libfranka
exceptions, a rejected goal). What tells a miss is the measured finger width once the grasp has finished: below
`min_object_width` nothing is between the fingers. `FrankaGripper` judges each grasp from both (`grasp_status`,
`grasp_missed`, `grasp_misses`) and keeps watching the width while it holds, so an object that slips out later
also reads as a miss.
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
    """Where goals go: franka_gripper's action servers (`ActionBackend`) or a test double.

    Grasp goals are numbered: `grasp()` increments `grasp_sent`, the new goal's id. When a goal ends (result or
    rejection, in any thread) the backend writes `last_grasp` (the result's `success`), `last_error` (its `error`,
    or why the goal ended without one) and then `last_grasp_id` (that goal's id; 0 before any), unless a newer
    goal has already ended: `last_*` always describe the newest goal that has ended."""

    error: str
    grasp_sent: int
    last_grasp_id: int
    last_grasp: bool | None
    last_error: str

    def ready(self) -> bool: ...

    def grasp(self, width: float, epsilon_inner: float, epsilon_outer: float, speed: float, force: float) -> None: ...

    def move(self, width: float, speed: float) -> None: ...


# why a grasp goal without `success` ended when its result carries no `error`, by action_msgs/GoalStatus code
# (franka_gripper aborts with an empty error when libfranka's grasp returns false)
_NO_SUCCESS = {5: "grasp goal canceled", 6: "aborted: final width outside the epsilon window"}


class ActionBackend:
    """franka_msgs/action/Grasp and Move clients on `<namespace>/grasp` and `<namespace>/move`. Each grasp goal's
    end (result, rejection) is kept in `last_grasp`, `last_error`, `last_grasp_id`; `FrankaGripper` judges and
    logs it."""

    def __init__(self, node: Any, namespace: str) -> None:
        self.namespace = namespace
        self.error = ""
        self.last_grasp: bool | None = None  # `success` of the last grasp goal, None while none finished
        self.last_error = ""  # its `error` (empty on success)
        self.last_grasp_id = 0  # id of the goal last_grasp/last_error belong to
        self.grasp_sent = 0  # grasp goals sent; the newest one's id
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
        self.grasp_sent += 1
        goal_id = self.grasp_sent
        self._grasp.send_goal_async(goal).add_done_callback(lambda f: self._on_grasp_accepted(goal_id, f))

    def move(self, width: float, speed: float) -> None:
        self._move.send_goal_async(self._types[1].Goal(width=width, speed=speed))

    def _finished(self, goal_id: int, success: bool, error: str) -> None:
        if goal_id < self.last_grasp_id:
            return  # an older goal ending after a newer one: its verdict no longer matters
        self.last_grasp, self.last_error = success, error
        self.last_grasp_id = goal_id  # last: a reader that sees the id sees its result

    def _on_grasp_accepted(self, goal_id: int, future: Any) -> None:
        try:
            handle = future.result()
        except Exception as e:  # the goal never reached the server: this grasp's end
            self._finished(goal_id, False, f"grasp goal not sent: {e}")
            return
        if handle is None or not handle.accepted:
            self._finished(goal_id, False, "grasp goal rejected by franka_gripper")
            return
        handle.get_result_async().add_done_callback(lambda f: self._on_grasp_result(goal_id, f))

    def _on_grasp_result(self, goal_id: int, future: Any) -> None:
        try:
            response = future.result()
        except Exception as e:
            self._finished(goal_id, False, f"grasp result lost: {e}")
            return
        result = response.result
        error = str(result.error or "")
        if not result.success and not error:
            error = _NO_SUCCESS.get(getattr(response, "status", None), "franka_gripper reported no success")
        log.debug("franka_gripper grasp ended: success %s %s", bool(result.success), error)
        self._finished(goal_id, bool(result.success), error)


class FrankaGripper:
    """Grasp/move goals on transitions of the target width, and a verdict on every grasp.

    After `command(width, measured)` the caller reads:
      - `grasp_status`: "" before any grasp and after the hand opens again; "grasping" while the goal runs;
        then "holding (width 23.1 mm)", "missed: fingers closed to 0.4 mm, nothing between them" (also with
        ", dropped after holding 23.1 mm" when a held object slipped out later) or "failed: <franka_gripper error>";
      - `grasp_missed`: True from the moment a grasp is judged missed or failed until the next goal (move or grasp);
      - `grasp_misses` / `grasps`: misses (failures included, at most one per grasp) / grasp goals sent.
    The verdict is made on the first `command` (or `observe`) call after franka_gripper's result arrived, from its
    `measured` width, and kept up to date while the hand stays closed. Each miss is logged once (warning).
    """

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
        min_object_width: float = 0.002,
    ) -> None:
        """`min_object_width` (m): a finished grasp whose fingers measure less has closed on nothing. The Franka
        Hand's fingers read ~0 m when shut on each other, and the objects it is asked to hold are millimetres
        thick or more; 2 mm sits between the two, above the joint-state noise."""
        check_grasp_window(grasp_width, epsilon_inner, epsilon_outer, max_width)
        self.namespace = namespace.rstrip("/")
        self.force, self.speed, self.min_change = force, speed, min_change
        self.grasp_width = grasp_width
        self.epsilon = (epsilon_inner, epsilon_outer)
        self.min_object_width = min_object_width
        self.state: str | None = None  # "grasp" or "open"
        self.last_width: float | None = None
        self.backend: GripperBackend = backend if backend is not None else ActionBackend(node, self.namespace)
        self.grasp_status = ""
        self.grasp_missed = False
        self.grasp_misses = 0
        self.grasps = 0
        self._grasp_id: int | None = None  # the backend's id of the current grasp goal (None: hand not closed)
        self._judged = False  # the current grasp has its verdict
        self._held: float | None = None  # width the current grasp was judged holding at (m)

    @property
    def error(self) -> str:
        return self.backend.error

    def available(self) -> bool:
        """True when franka_gripper's grasp and move servers answer; otherwise `error` says what is missing."""
        return self.backend.ready()

    def observe(self, measured: float) -> None:
        """Judge the current grasp from franka_gripper's result and the `measured` finger width (m), if its result
        has arrived; while holding, a width that collapses below `min_object_width` turns it into a miss.
        `command` calls this first; call it directly to keep the verdict current without commanding."""
        if self.state != "grasp" or self._grasp_id is None:
            return
        if not self._judged:
            if self.backend.last_grasp_id < self._grasp_id:
                return  # still running (any result is an earlier goal's): keep "grasping"
            self._judged = True
            if not self.backend.last_grasp:
                self._miss(f"failed: {self.backend.last_error or 'franka_gripper reported no success'}")
            elif measured < self.min_object_width:
                self._miss(f"missed: fingers closed to {measured * 1e3:.1f} mm, nothing between them")
            else:
                self._held = measured
                self.grasp_status = f"holding (width {measured * 1e3:.1f} mm)"
        elif self._held is not None and measured < self.min_object_width:
            held, self._held = self._held, None
            self._miss(
                f"missed: fingers closed to {measured * 1e3:.1f} mm, nothing between them, "
                f"dropped after holding {held * 1e3:.1f} mm"
            )

    def _miss(self, status: str) -> None:
        self.grasp_status, self.grasp_missed = status, True
        self.grasp_misses += 1
        log.warning("gripper grasp %s (%d of %d grasps missed)", status, self.grasp_misses, self.grasps)

    def command(self, width: float, measured: float, always: bool = False) -> str | None:
        """Target width (m) given the measured one -> "grasp", "move" or None (nothing to send / no server).
        Closing sends a grasp at `grasp_width` with the configured epsilon window, whatever `width` is; after a
        grasp the hand opens only once `width` exceeds the width that triggered it by `min_change`.
        `always` sends even without a transition (an operator's key press). Updates `grasp_status`,
        `grasp_missed` and `grasp_misses` (see the class docstring)."""
        self.observe(measured)
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
        self.grasp_missed, self._judged, self._held = False, False, None
        if kind == "grasp":
            self.backend.grasp(self.grasp_width, *self.epsilon, speed=self.speed, force=self.force)
            self._grasp_id = self.backend.grasp_sent
            self.grasps += 1
            self.grasp_status = "grasping"
            self.state = "grasp"
        else:
            self.backend.move(width, self.speed)
            self.grasp_status, self._grasp_id = "", None
            self.state = "open"
        self.last_width = width
        return kind
