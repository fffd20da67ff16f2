"""The time plots' data: long lines decimated to the lowest and highest point of each run (so a
spike stays), breaks kept, every dropped frame exact, and a page of bounded size however long
the recording."""

from __future__ import annotations

import json
import re

import numpy as np

from miniscope_core.quality.model import DeviceTimeline, HeadOrientation, ImagingSeries, SessionQC
from miniscope_core.quality.page import render_page
from miniscope_core.quality.plots import (
    MAX_POINTS,
    SessionAxis,
    decimated,
    line_points,
    timing_plot,
)


def test_short_lines_are_kept_whole() -> None:
    np.testing.assert_array_equal(decimated(np.arange(50.0), max_points=50), np.arange(50))


def test_each_run_keeps_its_lowest_and_highest_point_and_a_break() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=30)
    y[17] = np.nan  # a frame not decoded: the line breaks there
    kept = decimated(y, max_points=9)  # 3 runs of 10 points
    expected = {0, 17, 29}  # the ends, the break
    for first in (0, 10, 20):
        run = y[first : first + 10]
        expected |= {first + int(np.nanargmin(run)), first + int(np.nanargmax(run))}
    assert kept.tolist() == sorted(expected)
    # a run also ends at each edge (a pause): no run mixes the two sides
    edged = decimated(np.r_[np.zeros(14), 5.0, np.zeros(15)], max_points=9, edges=[15])
    assert edged.tolist() == [0, 10, 14, 15, 20, 29]  # the ends, each run's first, the spike
    gap = decimated(np.full(30, np.nan), max_points=9)  # all unknown: still a break per run
    assert gap.tolist() == [0, 10, 20, 29]


def test_a_long_line_keeps_every_spike_and_its_pauses() -> None:
    rng = np.random.default_rng(1)
    n = 200_000
    times = np.arange(n) / 30.0
    times[n // 2 :] += 600.0  # a pause of ten minutes halfway
    y = rng.normal(100, 1, n)
    spikes = rng.choice(n, 40, replace=False)
    y[spikes[:20]] = 300.0  # the LED flashing
    y[spikes[20:]] = -50.0  # the LED off
    axis = SessionAxis.of([times])
    x, shown = line_points(times, y, axis)
    assert len(x) <= MAX_POINTS + 3 and len(x) > MAX_POINTS // 2
    assert (shown == 300.0).sum() == 20 and (shown == -50.0).sum() == 20  # every spike kept
    np.testing.assert_allclose(
        np.sort(x[np.isin(shown, [300.0, -50.0])]), np.sort(axis.x(times[spikes]))
    )
    (pause,) = np.flatnonzero(np.isnan(shown))  # the line breaks at the pause, only there
    assert x[pause - 1] == axis.x(times[n // 2 - 1]) and x[pause + 1] == axis.x(times[n // 2])
    assert np.nanmin(shown) == -50.0 and np.nanmax(shown) == 300.0


def _long_timeline(n: int, gaps: int, seed: int = 2) -> DeviceTimeline:
    """`n` frames at 30 Hz in two acquisitions, `gaps` places where 1 to 4 frames are lost."""
    rng = np.random.default_rng(seed)
    frames = np.arange(n + 5 * gaps)
    lost = np.sort(rng.choice(np.arange(10, len(frames) - 10, 5), gaps, replace=False))
    missing = np.concatenate([at + np.arange(1, 2 + k % 4) for k, at in enumerate(lost)])
    kept = np.setdiff1d(frames, missing)[:n] / 30.0
    half = len(kept) // 2
    return DeviceTimeline.from_acquisitions("Miniscope", [kept[:half], kept[half:] + 900.0])


def test_every_dropped_frame_is_marked_exactly_in_a_long_recording() -> None:
    timeline = _long_timeline(200_000, 500)
    assert timeline.n_frames == 200_000 and len(timeline.dropped_counts) >= 499
    axis = SessionAxis.of([timeline.timestamps_s])
    (row,) = timing_plot([timeline], axis).rows
    intervals, dropped = row.lines
    assert len(intervals.x) <= MAX_POINTS + 3  # the intervals decimated ...
    after = np.searchsorted(timeline.timestamps_s, timeline.dropped_at_s, "right")
    np.testing.assert_array_equal(dropped.x, axis.x(timeline.timestamps_s[after]))  # ... not these
    np.testing.assert_array_equal(dropped.y, timeline.intervals_ms[after])
    assert [n for _, n in row.marks] == timeline.dropped_counts.tolist()
    np.testing.assert_array_equal([x for x, _ in row.marks], axis.x(timeline.dropped_at_s))
    # each gap's interval is the largest of its run: the decimated line shows it too
    assert set(np.round(dropped.y, 6)) <= set(np.round(intervals.y, 6))


def test_the_page_of_an_hour_long_recording_has_a_bounded_size() -> None:
    def page(n: int) -> str:
        timeline = _long_timeline(n, 50)
        times = timeline.timestamps_s
        brightness = 100 + np.sin(times / 60)
        image = np.zeros((4, 4))
        series = ImagingSeries("OnePhotonSeries", "Miniscope", "", times, brightness, image, image)
        yaw = np.radians(170 * np.sin(times / 7))
        quaternions = np.stack([np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)], axis=1)
        head = HeadOrientation("Miniscope", times, quaternions)
        qc = SessionQC("s", "s.nwb", imaging=[series], timelines=[timeline], orientation=[head])
        return render_page(qc)

    long, short = page(200_000), page(20_000)  # 1 h 51 min and 11 min at 30 Hz
    assert len(long.encode()) < 500_000  # uPlot's 50 kB included
    assert len(long) < 1.2 * len(short)  # bounded: not ten times the short one
    data = re.findall(r'<script type="application/json" class="plot-data">(.*?)</script>', long)
    plots = [json.loads(text) for text in data]
    lines = [line for plot in plots for row in plot["rows"] for line in row["lines"]]
    assert max(len(line["x"]) for line in lines) <= MAX_POINTS + 3
