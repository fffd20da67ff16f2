"""What the quality tests are built from: one-photon-like frames (cells on a moving tissue, a
lens' vignetting and noise that stay put: what makes real motion estimates hard) and a whole
session's QC made as the conversion would make it."""

from __future__ import annotations

import numpy as np
from skimage.filters import gaussian

from miniscope_core.quality.model import (
    AcquisitionSettings,
    CameraFrame,
    DeviceTimeline,
    HeadOrientation,
    ImagingSeries,
    SessionQC,
    Thresholds,
    Validation,
)
from miniscope_core.quality.stats import SeriesStats

Shifts = np.ndarray  # (k, 2): (dy, dx) of the tissue per frame, px


def one_photon_frames(
    shifts: Shifts, height: int = 240, width: int = 320, seed: int = 0
) -> np.ndarray:
    """uint8 (k, height, width): the same tissue moved by each (dy, dx) (subpixel: by its
    Fourier phase), under a fixed vignetting and fresh noise per frame."""
    rng = np.random.default_rng(seed)
    pad = int(np.ceil(np.abs(shifts).max(initial=0))) + 8
    big = (height + 2 * pad, width + 2 * pad)
    cells = np.zeros(big)
    n_cells = big[0] * big[1] // 300
    cells[rng.integers(0, big[0], n_cells), rng.integers(0, big[1], n_cells)] = rng.uniform(
        0.4, 1.0, n_cells
    )
    tissue = gaussian(cells, 3.0) * 1500
    tissue += gaussian(rng.normal(size=big), 12.0) * 150  # neuropil
    spectrum = np.fft.fft2(tissue)
    rows_f, columns_f = np.fft.fftfreq(big[0])[:, None], np.fft.fftfreq(big[1])[None, :]
    rows, columns = np.mgrid[:height, :width]
    radius2 = (rows - height / 2) ** 2 + (columns - width / 2) ** 2
    vignette = 30 + 110 * np.exp(-radius2 / (2 * (0.4 * max(height, width)) ** 2))
    frames = np.empty((len(shifts), height, width), np.uint8)
    for k, shift in enumerate(shifts):
        ramp = np.exp(-2j * np.pi * (rows_f * shift[0] + columns_f * shift[1]))
        moved = np.fft.ifft2(spectrum * ramp).real
        frame = vignette + moved[pad : pad + height, pad : pad + width]
        frames[k] = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255)
    return frames


def session_qc(name: str = "mouse<1> & 'friends'") -> SessionQC:
    """A two-acquisition session QC built as the conversion would: frames fed to SeriesStats
    through two threads' views out of order, timestamps with dropped frames, head orientation,
    a gray and an RGB camera frame, settings, a failed validation; names that need escaping."""
    rng = np.random.default_rng(7)
    n = 240
    shifts = np.zeros((n, 2))
    shifts[120:150] = (4.0, -3.0)  # the mouse bumped the scope once
    frames = one_photon_frames(shifts + rng.normal(0, 0.2, (n, 2)), height=120, width=160)
    frames = (frames * np.linspace(1.0, 0.85, n)[:, None, None]).astype(np.uint8)  # bleaching
    series = SeriesStats(n, max_sample_frames=60)
    head, tail = series.observer((160, 120)), series.observer((160, 120))
    for index in rng.permutation(n):
        (head if index < n // 2 else tail).add(int(index), np.ascontiguousarray(frames[index].T))
    summary = series.summary()
    assert summary is not None
    first = np.arange(n // 2) / 20.0
    second = 200.0 + np.arange(n // 2) / 20.0
    second = np.delete(second, [30, 31, 32])  # three frames dropped in the second acquisition
    times = np.concatenate([first, second])[:n]
    scope = ImagingSeries.from_summary("OnePhotonSeries<scope>", "Miniscope", "", summary, times)
    camera_times = [np.arange(60) / 15.0, 200.0 + np.delete(np.arange(61), [10]) / 15.0]
    timelines = [
        DeviceTimeline.from_acquisitions("Miniscope", [first, second]),
        DeviceTimeline.from_acquisitions("BehavCam <1>", camera_times),
    ]
    t = np.arange(0, 10, 0.05)
    yaw = np.radians(60 * np.sin(t / 2))
    quaternions = np.stack([np.cos(yaw / 2), 0 * t, 0 * t, np.sin(yaw / 2)], axis=1)
    gray = (np.add.outer(np.arange(90), np.arange(120)) % 256).astype(np.uint8)
    rgb = np.stack([gray, gray[::-1], np.full_like(gray, 90)], axis=2)
    return SessionQC(
        session=name,
        nwb_file="nwb/mouse1 & co.nwb",
        imaging=[scope],
        timelines=timelines,
        orientation=[HeadOrientation("Miniscope", t, quaternions)],
        camera_frames=[
            CameraFrame("BehavCam <1>", "11_34_45", gray, 0.0),
            CameraFrame("BehavCam <1>", "11_37_45", rgb, 200.0),
        ],
        settings=[
            AcquisitionSettings("11_34_45", "Miniscope", {"gain": 2.0, "led0": 12, "ewl": 0}),
            AcquisitionSettings("11_34_45", "BehavCam <1>", {"gain": "low", "frameRate": 15}),
            AcquisitionSettings("11_37_45", "Miniscope", {"gain": 3.5, "led0": "<b>12</b>"}),
        ],
        validation=Validation(False, ("check_data_orientation: <bad> & worse",), "nwbinspector"),
        thresholds=Thresholds(dropped_percent=1.0),  # a strict lab: 1.25 % is beyond it
        made_by="miniscope-nwb 0.1.0",
    )
