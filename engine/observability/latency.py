"""Latency histograms (HdrHistogram) shared by the Latency pane and the metrics endpoint.

Stages are recorded in microseconds from 1 µs to 10 minutes at 3 significant digits, so a
p99 is exact to 0.1% without keeping samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

STAGES = (
    "bar_to_decision",
    "decision_to_submit",
    "submit_to_ack",
    "ack_to_fill",
    "rest_roundtrip",
    "stream_lag",
)

_MAX_US = 600_000_000


@dataclass(frozen=True, slots=True)
class LatencySummary:
    stage: str
    count: int
    p50: float
    p90: float
    p99: float
    max: float  # seconds
    buckets: tuple[tuple[float, int], ...] = ()  # (upper bound seconds, count)


class LatencyRecorder:
    def __init__(self) -> None:
        self._hist = {stage: HdrHistogram(1, _MAX_US, 3) for stage in STAGES}
        # Power-of-two microsecond bins beside each histogram: the pane's bar chart reads these
        # (walking the HdrHistogram's sub-buckets in Python took ~50 ms per stage).
        self._bins = {stage: [0] * (_MAX_US.bit_length() + 1) for stage in STAGES}

    def record(self, stage: str, seconds: float) -> None:
        micros = int(seconds * 1e6)
        if micros < 1:
            micros = 1
        elif micros > _MAX_US:
            micros = _MAX_US
        self._hist[stage].record_value(micros)
        self._bins[stage][micros.bit_length()] += 1

    def count(self, stage: str) -> int:
        return int(self._hist[stage].get_total_count())

    def summary(self, stage: str, buckets: int = 0) -> LatencySummary:
        h = self._hist[stage]
        count = int(h.get_total_count())
        if count == 0:
            return LatencySummary(stage, 0, 0.0, 0.0, 0.0, 0.0)
        pct = h.get_percentile_to_value_dict([50, 90, 99])
        maximum = h.get_max_value()
        return LatencySummary(
            stage,
            count,
            pct[50] / 1e6,
            pct[90] / 1e6,
            pct[99] / 1e6,
            maximum / 1e6,
            self._buckets(stage, buckets) if buckets else (),
        )

    def _buckets(self, stage: str, n: int) -> tuple[tuple[float, int], ...]:
        """Up to ``n`` buckets (upper bound in seconds, count) spanning the recorded range."""
        bins = self._bins[stage]
        used = [i for i, c in enumerate(bins) if c]
        if not used:
            return ()
        lo, hi = used[0], used[-1]
        width = max(1, -(-(hi - lo + 1) // n))  # ceil: bins merged per bucket
        out = []
        for start in range(lo, hi + 1, width):
            stop = min(start + width, hi + 1)
            out.append(((1 << (stop - 1)) / 1e6, sum(bins[start:stop])))
        return tuple(out)

    def reset(self) -> None:
        for h in self._hist.values():
            h.reset()
        for bins in self._bins.values():
            bins[:] = [0] * len(bins)
