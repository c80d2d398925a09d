"""FrankaGripper's verdict on each grasp (ccol_policy.gripper): franka_gripper reports success for a grasp that
closed on nothing, so the measured width after the grasp tells a miss. ROS-free: tests/fake_gripper.py's server
stands in for franka_gripper's action servers."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from fake_gripper import FakeGraspServer, close_on

from ccol_policy.gripper import ActionBackend, FrankaGripper


def misses_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ccol_policy.gripper" and r.levelno == logging.WARNING]


def test_grasp_on_nothing_is_a_miss_although_franka_gripper_reports_success(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeGraspServer(None)
    gripper = FrankaGripper(None, backend=server)
    assert (gripper.grasp_status, gripper.grasp_missed, gripper.grasp_misses) == ("", False, 0)
    with caplog.at_level(logging.WARNING):
        close_on(gripper, server, 0.0)  # the policy closes; later cycles keep passing the measured width
        gripper.command(0.0, server.width)
    assert server.results == [("grasp", "succeeded", 0.0, True)] and server.last_grasp is True  # the inconvenient truth
    assert gripper.grasp_status == "missed: fingers closed to 0.0 mm, nothing between them"
    assert gripper.grasp_missed and gripper.grasp_misses == 1 and gripper.grasps == 1
    assert len(misses_logged(caplog)) == 1 and "missed: fingers closed to 0.0 mm" in misses_logged(caplog)[0]


def test_fingers_stopping_just_above_zero_are_still_a_miss() -> None:
    server = FakeGraspServer(0.0004)  # the fingers' reading when shut on each other is not exactly 0
    gripper = FrankaGripper(None, backend=server)
    close_on(gripper, server, 0.0)
    assert server.last_grasp is True and gripper.grasp_missed
    assert gripper.grasp_status == "missed: fingers closed to 0.4 mm, nothing between them"
    thin = FrankaGripper(None, backend=FakeGraspServer(0.0004), min_object_width=0.0002)  # a threshold below it
    close_on(thin, thin.backend, 0.0)
    assert thin.grasp_status == "holding (width 0.4 mm)" and not thin.grasp_missed


def test_grasp_on_a_2_cm_object_is_holding(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeGraspServer(0.02)
    gripper = FrankaGripper(None, backend=server)
    with caplog.at_level(logging.WARNING):
        close_on(gripper, server, 0.02)
    assert server.results == [("grasp", "succeeded", 0.02, True)]
    assert gripper.grasp_status == "holding (width 20.0 mm)"
    assert not gripper.grasp_missed and gripper.grasp_misses == 0 and misses_logged(caplog) == []


def test_failed_result_is_failed_with_franka_gripper_error(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeGraspServer(0.02)
    server.grasp_error = "libfranka gripper: command failed"
    gripper = FrankaGripper(None, backend=server)
    with caplog.at_level(logging.WARNING):
        close_on(gripper, server, 0.02)
        gripper.command(0.02, server.width)
    assert server.last_grasp is False
    assert gripper.grasp_status == "failed: libfranka gripper: command failed"
    assert gripper.grasp_missed and gripper.grasp_misses == 1 and len(misses_logged(caplog)) == 1


def test_reopening_clears_the_miss_for_the_next_grasp_and_misses_add_up() -> None:
    server = FakeGraspServer(None)
    gripper = FrankaGripper(None, backend=server)
    close_on(gripper, server, 0.0)
    assert gripper.grasp_missed and gripper.grasp_misses == 1
    assert gripper.command(0.08, server.width) == "move" and server.width == 0.08
    assert (gripper.grasp_status, gripper.grasp_missed, gripper.grasp_misses) == ("", False, 1)
    server.object_width = 0.02  # the next try finds the object
    close_on(gripper, server, 0.02)
    assert gripper.grasp_status == "holding (width 20.0 mm)" and not gripper.grasp_missed
    gripper.command(0.08, server.width)
    server.object_width = None
    close_on(gripper, server, 0.0)  # and the third misses again
    assert gripper.grasp_missed and (gripper.grasp_misses, gripper.grasps) == (2, 3)


def test_an_operators_key_press_grasp_is_judged_too() -> None:
    server = FakeGraspServer(None)
    gripper = FrankaGripper(None, backend=server)
    assert gripper.command(0.0, server.width, always=True) == "grasp"  # recorder_node: close on a key press
    assert gripper.grasp_status == "grasping"  # judged from the width the next call measures
    gripper.command(0.0, server.width)
    assert gripper.grasp_missed and gripper.grasp_misses == 1
    server.object_width = 0.03
    assert gripper.command(0.08, server.width, always=True) == "move" and not gripper.grasp_missed
    assert gripper.command(0.0, server.width, always=True) == "grasp"
    gripper.command(0.0, server.width)
    assert gripper.grasp_status == "holding (width 30.0 mm)" and gripper.grasp_misses == 1


def test_verdict_waits_for_franka_gripper_result() -> None:
    server = FakeGraspServer(None, deferred=True)
    gripper = FrankaGripper(None, backend=server)
    close_on(gripper, server, 0.0)  # the fingers are shut but the result is still on its way
    assert (gripper.grasp_status, gripper.grasp_missed) == ("grasping", False)
    server.finish_grasps()
    assert gripper.grasp_status == "grasping"  # judged on the next command, with its measured width
    gripper.command(0.0, server.width)
    assert gripper.grasp_missed and gripper.grasp_misses == 1


def test_an_earlier_grasps_late_result_is_not_this_grasps_verdict() -> None:
    server = FakeGraspServer(None, deferred=True)
    gripper = FrankaGripper(None, backend=server)
    close_on(gripper, server, 0.0)  # grasp 1 on nothing, result pending
    gripper.command(0.08, server.width)  # the hand reopens before it arrives
    server.object_width = 0.02
    close_on(gripper, server, 0.02)  # grasp 2 on an object, result pending too
    server.finish_grasps()
    gripper.command(0.02, server.width)
    assert server.last_grasp_id == 2 and gripper.grasp_status == "holding (width 20.0 mm)"
    assert gripper.grasp_misses == 0


def test_an_object_that_slips_out_later_is_a_miss_once(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeGraspServer(0.02)
    gripper = FrankaGripper(None, backend=server)
    close_on(gripper, server, 0.02)
    assert gripper.grasp_status == "holding (width 20.0 mm)"
    server.object_width, server.width = None, 0.0  # dropped: the force closes the fingers on each other
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert gripper.command(0.02, server.width) is None  # no new goal: the hand stays closed
    assert gripper.grasp_status == (
        "missed: fingers closed to 0.0 mm, nothing between them, dropped after holding 20.0 mm"
    )
    assert gripper.grasp_missed and gripper.grasp_misses == 1 and len(misses_logged(caplog)) == 1


def test_action_backend_passes_franka_gripper_results_back() -> None:
    backend = ActionBackend(None, "/franka_gripper")  # no franka_msgs here: only the result handling is exercised
    done = SimpleNamespace(add_done_callback=lambda cb: None)

    def result(success: bool, error: str, status: int) -> SimpleNamespace:
        response = SimpleNamespace(status=status, result=SimpleNamespace(success=success, error=error))
        return SimpleNamespace(result=lambda: response)

    backend._on_grasp_result(1, result(True, "", 4))
    assert (backend.last_grasp, backend.last_error, backend.last_grasp_id) == (True, "", 1)
    backend._on_grasp_result(3, result(False, "", 6))
    assert (backend.last_grasp, backend.last_error, backend.last_grasp_id) == (
        False,
        "aborted: final width outside the epsilon window",
        3,
    )
    backend._on_grasp_result(2, result(True, "", 4))  # an older goal ending late changes nothing
    assert (backend.last_grasp, backend.last_grasp_id) == (False, 3)
    backend._on_grasp_result(4, result(False, "gripper not homed", 6))
    assert backend.last_error == "gripper not homed"
    backend._on_grasp_accepted(5, SimpleNamespace(result=lambda: SimpleNamespace(accepted=False)))
    assert (backend.last_grasp, backend.last_error, backend.last_grasp_id) == (
        False,
        "grasp goal rejected by franka_gripper",
        5,
    )
    handle = SimpleNamespace(accepted=True, get_result_async=lambda: done)
    backend._on_grasp_accepted(6, SimpleNamespace(result=lambda: handle))
    assert backend.last_grasp_id == 5  # accepted: the verdict comes with the result
