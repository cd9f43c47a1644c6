"""A real PortAudio callback stream, paced by a real audio clock (the JACK dummy driver that
`make test` starts), for a minute of constant changes: no underrun.

This is the suite's one 60-second test (marked slow): it is the only way to see that the
callback keeps up under the publishing and crossfading the appliance really does. The count
starts once the stream runs: JACK reports an xrun while it activates a new client (the
stream is still silent then, fading in), which says nothing about the callback.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from heartsong.audio.device_sink import PyAudioSink
from heartsong.audio.engine import AudioEngine
from heartsong.audio.soundscapes import PRESETS

SECONDS = 60.0
CHANGE_S = 0.1
SWITCH_S = 10.0


@pytest.mark.slow
@pytest.mark.jack
@pytest.mark.realtime
def test_a_minute_of_changes_every_100_ms_gives_no_underrun(jack_server: object) -> None:
    engine = AudioEngine(fade_s=0.5)  # the device defaults: 48 kHz, 256-frame buffers
    engine.warm_up()
    sink = PyAudioSink(engine, "system", watch=None)  # the JACK dummy device
    names = list(PRESETS)
    rng = np.random.default_rng(60)
    changes = 0
    sink.start()
    try:
        deadline = time.monotonic() + 10.0
        while engine.frames_rendered < engine.sample_rate_hz and time.monotonic() < deadline:
            time.sleep(0.01)  # one second of audio: the client is active and in the graph
        underruns0 = engine.underruns
        t0 = time.monotonic()
        frames0 = engine.frames_rendered
        while time.monotonic() - t0 < SECONDS:
            name = names[int((time.monotonic() - t0) // SWITCH_S) % len(names)]
            values: dict[str, object] = {"soundscape": name, "playing": True}
            for key, r in PRESETS[name].ranges().items():
                if r is not None:
                    values[key] = float(rng.uniform(r.lo, r.hi))
            engine.set_params(**values)
            changes += 1
            time.sleep(max(0.0, t0 + changes * CHANGE_S - time.monotonic()))
        wall_s = time.monotonic() - t0
        rendered_s = (engine.frames_rendered - frames0) / engine.sample_rate_hz
    finally:
        sink.close()
    assert changes >= SECONDS / CHANGE_S - 1
    assert engine.current_preset == names[int(SECONDS // SWITCH_S) % len(names) - 1]
    assert engine.underruns - underruns0 == 0
    assert engine.callback_error is None and sink.supervisor.loss_count == 0
    # the device clock paced the callback: as much audio as wall time
    assert rendered_s == pytest.approx(wall_s, rel=0.05)
