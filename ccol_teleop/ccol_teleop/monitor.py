"""Per-topic rate and health bookkeeping of the recorder (ROS-free)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field


@dataclass
class TopicHealth:
    nominal_hz: float
    times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=2000))
    error: str | None = None  # last content problem (encoding, joint names), cleared by a good message


class TopicMonitor:
    """Arrival times per topic over a sliding window; `problems()` says what would make a recording bad."""

    def __init__(
        self, nominal: dict[str, float], window_s: float = 2.0, min_rate_fraction: float = 0.5, silence_s: float = 1.0
    ) -> None:
        self.topics = {topic: TopicHealth(rate) for topic, rate in nominal.items()}
        self.window_s = window_s
        self.min_rate_fraction = min_rate_fraction
        self.silence_s = silence_s

    def record(self, topic: str, now: float, error: str | None = None) -> None:
        health = self.topics[topic]
        health.times.append(now)
        health.error = error

    def rate(self, topic: str, now: float) -> float:
        times = self.topics[topic].times
        recent = [t for t in times if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def problems(self, now: float) -> list[str]:
        out = []
        for topic, h in self.topics.items():
            if h.error:
                out.append(f"{topic}: {h.error}")
            elif not h.times or now - h.times[-1] > self.silence_s:
                out.append(f"{topic}: silent (no message for more than {self.silence_s:.1f}s); is the driver running?")
            else:
                rate = self.rate(topic, now)
                if rate < self.min_rate_fraction * h.nominal_hz:
                    out.append(f"{topic}: {rate:.1f} Hz, far below the nominal {h.nominal_hz:.0f} Hz")
        return out

    def summary(self, now: float) -> str:
        return ", ".join(f"{topic} {self.rate(topic, now):.1f} Hz" for topic in self.topics)
