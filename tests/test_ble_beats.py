"""Beat times from RR notifications: chained, anchored to arrival, gaps marked, no repeats.

The simulated person's strap gives the truth (the beat times behind every interval); the
timeline sees only what a host sees: decoded notifications and their arrival times.
"""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from heartsong.dsp.beats import BeatHistory
from heartsong.dsp.pipeline import StreamingPipeline
from heartsong.events import RrBlock
from heartsong.sensors.ble_beats import LAG_WINDOW, RrTimeline
from heartsong.sensors.hrm_parse import HeartRateMeasurement
from heartsong.sensors.simulated import PersonParams, SimulatedPerson, SimulatedStrap

Note = tuple[float, tuple[int, ...], tuple[float, ...]]  # arrival, ticks, true beat times


def strap_notes(duration_s: float, seed: int = 1, hr_bpm: float = 62.0) -> list[Note]:
    """A strap's notifications for ``duration_s``, with 5-60 ms delivery delays."""
    person = SimulatedPerson(PersonParams(hr_bpm=hr_bpm), seed=seed)
    strap = SimulatedStrap(person)
    rng = random.Random(seed)
    notes = []
    for sent, rr_ms, beats in strap.notifications_until(duration_s):
        ticks = tuple(round(float(v) * 1.024) for v in rr_ms)
        notes.append((sent + rng.uniform(0.005, 0.060), ticks, tuple(map(float, beats))))
    return notes


def measurement(ticks: tuple[int, ...], contact: bool = True) -> HeartRateMeasurement:
    hr = round(60 * 1024 * len(ticks) / sum(ticks)) if ticks else 0
    return HeartRateMeasurement(
        hr_bpm=hr, contact_supported=True, contact_detected=contact, rr_ticks=ticks
    )


def run(timeline: RrTimeline, notes: list[Note]) -> tuple[list[RrBlock], list[float]]:
    """Feed every note; return the blocks and, per emitted beat, its true time."""
    blocks, truth = [], []
    for arrival, ticks, beats in notes:
        block = timeline.feed(measurement(ticks), arrival)
        assert block is not None
        blocks.append(block)
        truth.extend(beats[len(beats) - block.rr_ms.shape[0] :])
    return blocks, truth


def test_an_unbroken_stream_chains_beats_on_the_arrival_clock() -> None:
    notes = strap_notes(600.0)
    blocks, truth = run(RrTimeline(), notes)
    assert not any(b.gap_before for b in blocks)
    rr = np.concatenate([b.rr_ms for b in blocks])
    beats = np.concatenate([b.beat_times_s for b in blocks])
    sent_rr = np.concatenate([np.array(t, dtype=float) for _, t, _ in notes]) * 1000 / 1024
    assert np.array_equal(rr, sent_rr)  # every interval, exactly, once
    assert np.all(np.diff(beats) > 0)
    # chained beats are as far apart as the intervals say, but for the offset's small
    # corrections (a faster delivery lowers it, the drift allowance lets it creep up)
    # (the first notifications of a chain may move it by up to a period at once)
    slip = np.abs(np.diff(beats) - rr[1:] / 1000.0)
    assert slip.max() < 1.07 and np.all(slip[20:] < 0.06) and np.median(slip) < 1e-3
    err = beats - np.array(truth)
    # a beat is placed at or after its true time (anchored to arrival), never more than
    # a notification period plus the delivery delay late, and soon within about the
    # fastest delivery delay plus the drift allowance's creep
    assert err.min() > -1.0 / 1024 - 1e-9
    assert err.max() < 1.07
    assert np.all(err[len(err) // 10 :] < 0.15)
    assert np.median(err) < 0.05
    for block, (arrival, _, _) in zip(blocks, notes, strict=True):
        assert block.t_s == arrival
        if block.rr_ms.size:
            assert block.beat_times_s[-1] <= arrival + 1e-9  # beats precede their notification


def test_a_lost_notification_is_found_by_the_lasting_lag() -> None:
    notes = strap_notes(120.0)
    lost = 60
    kept = notes[:lost] + notes[lost + 1 :]
    tl = RrTimeline()
    blocks, truth = run(tl, kept)
    flagged = [i for i, b in enumerate(blocks) if b.gap_before]
    assert flagged == [lost + LAG_WINDOW - 1]  # the lag lasted LAG_WINDOW notifications
    assert tl.stats.gaps_marked == 1 and tl.stats.rr_emitted == tl.stats.rr_received
    err = np.concatenate([b.beat_times_s for b in blocks]) - np.array(truth)
    n_before = sum(b.rr_ms.size for b in blocks[:lost])
    n_lagging = sum(b.rr_ms.size for b in blocks[lost : flagged[0]])
    lost_s = sum(notes[lost][1]) / 1024
    assert np.all(np.abs(err[:n_before]) < 1.07)
    # until then the chain ran early by the lost beats' duration; then it was re-anchored
    assert np.all(err[n_before : n_before + n_lagging] > -lost_s - 0.01)
    assert np.all(np.abs(err[n_before + n_lagging :]) < 1.07)


def test_late_notifications_do_not_break_the_chain() -> None:
    notes = strap_notes(180.0)
    # the host is busy: notifications 50-54 are handed over together with 55, and 100-107
    # arrive half a second after 108 was sent (radio retransmissions, a blocked loop)
    late = list(notes)
    for i in range(50, 55):
        late[i] = (notes[55][0], *notes[i][1:])
    for i in range(100, 109):
        late[i] = (notes[108][0] + 0.5, *notes[i][1:])
    tl = RrTimeline()
    blocks, truth = run(tl, late)
    assert tl.stats.gaps_marked == 0 and tl.stats.rr_emitted == tl.stats.rr_received
    beats = np.concatenate([b.beat_times_s for b in blocks])
    assert np.all(np.diff(beats) > 0)
    err = beats - np.array(truth)
    assert np.all(np.abs(err) < 1.07) and np.median(np.abs(err)) < 0.1


def test_no_contact_drops_intervals_and_marks_the_gap() -> None:
    notes = strap_notes(90.0)
    tl = RrTimeline()
    out: list[RrBlock] = []
    for i, (arrival, ticks, _) in enumerate(notes):
        block = tl.feed(measurement(ticks, contact=not 30 <= i < 40), arrival)
        assert block is not None
        out.append(block)
    assert all(not b.contact and b.rr_ms.size == 0 for b in out[30:40])
    assert all(b.contact for b in out[:30] + out[40:])
    assert [i for i, b in enumerate(out) if b.gap_before] == [40]
    assert tl.stats.rr_no_contact == sum(len(t) for _, t, _ in notes[30:40])


def test_a_replayed_notification_after_reconnecting_is_not_counted_twice() -> None:
    notes = strap_notes(60.0)
    tl = RrTimeline()
    blocks, _ = run(tl, notes[:30])
    tl.break_chain("link lost")
    tl.reconnected()
    # BlueZ hands over the cached last value when notifications are re-enabled
    _, ticks, _ = notes[29]
    assert tl.feed(measurement(ticks), notes[35][0] - 0.5) is None
    after, _ = run(tl, notes[36:])
    assert tl.stats.replays == 1
    assert after[0].gap_before and not any(b.gap_before for b in after[1:])
    beats = np.concatenate([b.beat_times_s for b in blocks + after])
    assert np.all(np.diff(beats) > 0)
    # but the same measurement again later, on the same link, is a new notification
    last = notes[-1]
    again = tl.feed(measurement(last[1]), last[0] + 1.0)
    assert again is not None and again.rr_ms.size == len(last[1])


def test_beats_that_would_not_follow_the_last_one_are_never_emitted() -> None:
    tl = RrTimeline()
    a = tl.feed(measurement((1024, 1024)), 10.0)
    assert a is not None and list(a.beat_times_s) == [9.0, 10.0]
    tl.break_chain("link lost")
    # a new link's first notification claims beats that overlap the old chain's
    b = tl.feed(measurement((1024, 1024, 512)), 10.6)
    assert b is not None and b.gap_before
    assert list(b.beat_times_s) == [10.1, 10.6] and list(b.rr_ms) == [1000.0, 500.0]
    assert tl.stats.rr_not_after == 1


def test_clock_drift_between_strap_and_host_does_not_break_the_chain() -> None:
    for ppm in (-80.0, 80.0):
        notes = strap_notes(7200.0, seed=3)
        # the host's clock runs ppm faster/slower than the strap's
        host = [(a * (1 + ppm * 1e-6), t, b) for a, t, b in notes]
        tl = RrTimeline()
        blocks, truth = run(tl, host)
        assert tl.stats.gaps_marked == 0
        err = np.concatenate([b.beat_times_s for b in blocks]) - np.array(truth) * (
            1 + ppm * 1e-6
        )
        assert np.all(err[100:] < 0.1) and np.all(err > -0.01)


def test_beats_the_strap_itself_dropped_are_detected_by_the_lag() -> None:
    notes = strap_notes(120.0)
    # the strap drops the intervals of 3 notifications but keeps notifying on time
    damaged = [(a, () if 50 <= i < 53 else t, b) for i, (a, t, b) in enumerate(notes)]
    tl = RrTimeline()
    blocks = [tl.feed(measurement(t), a) for a, t, _ in damaged]
    assert [i for i, b in enumerate(blocks) if b is not None and b.gap_before] == [
        53 + LAG_WINDOW - 1
    ]


def test_the_pipeline_accepts_every_block_and_never_joins_across_a_gap() -> None:
    notes = strap_notes(300.0)
    tl = RrTimeline()
    pipe = StreamingPipeline()
    history = BeatHistory(span_s=1000.0, max_beats=1000)  # the pipeline's rule, in public
    accepted = 0
    for i, (arrival, ticks, _) in enumerate(notes):
        if i in (100, 101, 200):
            tl.break_chain("test")
            continue
        block = tl.feed(measurement(ticks), arrival)
        assert block is not None
        accepted += pipe.feed_rr(block).shape[0]
        if block.gap_before or not block.contact:
            history.mark_gap()
        for t, rr in zip(block.beat_times_s, block.rr_ms, strict=True):
            assert history.add_interval(float(t), float(rr))
    assert accepted == tl.stats.rr_emitted
    window = history.window(-math.inf, math.inf)
    assert len(set(window.segment.tolist())) == 3  # two breaks, three unbroken segments


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.05, 4.0),  # time since the previous event, s
            st.sampled_from(["note", "note", "note", "no_contact", "break", "reconnect"]),
            st.lists(st.integers(1, 3000), max_size=5),  # RR ticks
        ),
        max_size=60,
    )
)
def test_any_event_sequence_gives_blocks_the_pipeline_accepts(
    events: list[tuple[float, str, list[int]]],
) -> None:
    tl = RrTimeline()
    pipe = StreamingPipeline()
    t = 0.0
    last_beat = -math.inf
    emitted = 0
    for dt, kind, ticks in events:
        t += dt
        if kind == "break":
            tl.break_chain("fuzz")
            continue
        if kind == "reconnect":
            tl.reconnected()
            continue
        block = tl.feed(measurement(tuple(ticks), contact=kind == "note"), t)
        if block is None:
            continue
        pipe.feed_rr(block)  # raises InputDataError for a malformed block
        if block.beat_times_s.size:
            assert block.beat_times_s[0] > last_beat
            last_beat = float(block.beat_times_s[-1])
        emitted += block.rr_ms.size
    assert emitted == tl.stats.rr_emitted <= tl.stats.rr_received
