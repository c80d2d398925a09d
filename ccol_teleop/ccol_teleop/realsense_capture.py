"""D435i capture with pyrealsense2 inside the recorder, for set-ups without realsense-ros.

Frames carry the camera's hardware timestamps (global time domain, so they are comparable with the host clock)
and are turned into sensor_msgs/Image + CameraInfo with realsense-ros frame names, so the bags look the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image

log = logging.getLogger(__name__)


class CameraError(RuntimeError):
    """The camera cannot be used; the message says what to do."""


def _stamp(ms: float) -> Time:
    ns = int(ms * 1e6)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def image_msg(array: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    h, w = array.shape[:2]
    msg = Image(
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=int(array.strides[0]),
        data=np.ascontiguousarray(array).tobytes(),
    )
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


class D435iCapture:
    """Colour (rgb8) and optional aligned depth (16UC1, mm) at width x height @ fps, delivered to `callback`."""

    def __init__(
        self,
        width: int,
        height: int,
        fps: int,
        depth: bool,
        callback: Callable[[Image, Image | None, CameraInfo], None],
    ) -> None:
        try:
            import pyrealsense2 as rs
        except ImportError as exc:
            raise CameraError(
                "direct_capture needs pyrealsense2 (pip install pyrealsense2), or run realsense-ros "
                "and set direct_capture:=false"
            ) from exc
        self.rs = rs
        if len(rs.context().query_devices()) == 0:
            raise CameraError("no RealSense camera found: check the USB 3 cable and `rs-enumerate-devices`")
        self.width, self.height, self.fps, self.depth = width, height, fps, depth
        self.callback = callback
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pipeline = rs.pipeline()
        config = rs.config()
        config.enable_stream(rs.stream.color, width, height, rs.format.rgb8, fps)
        if depth:
            config.enable_stream(rs.stream.depth, width, height, rs.format.z16, fps)
        self.config = config
        self.align = rs.align(rs.stream.color) if depth else None

    def start(self) -> None:
        try:
            profile = self.pipeline.start(self.config)
        except RuntimeError as exc:
            raise CameraError(f"cannot start the D435i at {self.width}x{self.height}@{self.fps}: {exc}") from exc
        sensor = profile.get_device().first_color_sensor()
        if sensor.supports(self.rs.option.global_time_enabled):
            sensor.set_option(self.rs.option.global_time_enabled, 1)
        intr = profile.get_stream(self.rs.stream.color).as_video_stream_profile().get_intrinsics()
        self.info = CameraInfo(
            width=intr.width,
            height=intr.height,
            distortion_model="plumb_bob",
            d=list(intr.coeffs),
            k=[intr.fx, 0.0, intr.ppx, 0.0, intr.fy, intr.ppy, 0.0, 0.0, 1.0],
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frames = self.pipeline.wait_for_frames(timeout_ms=1000)
            except RuntimeError:
                log.error("D435i delivered no frame for 1 s (cable, power or USB bandwidth?)")
                continue
            if self.align is not None:
                frames = self.align.process(frames)
            color = frames.get_color_frame()
            if not color:
                continue
            stamp = _stamp(color.get_timestamp())
            color_msg = image_msg(np.asanyarray(color.get_data()), "rgb8", stamp, "camera_color_optical_frame")
            depth_msg = None
            if self.depth:
                d = frames.get_depth_frame()
                if d:
                    depth_msg = image_msg(np.asanyarray(d.get_data()), "16UC1", stamp, "camera_color_optical_frame")
            self.info.header = color_msg.header
            self.callback(color_msg, depth_msg, self.info)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self.pipeline.stop()
