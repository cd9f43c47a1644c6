"""The audio output (a USB DAC) is lost and comes back while the whole appliance runs.

The fault goes through the audio backend under the real device sink and its output
supervisor (:mod:`reliability.fake_audio`: the stream stops being called and the device
leaves the list; the supervisor's device-watch hook sees the list change). The promises:
the appliance keeps measuring, storing and deciding while silent; the supervisor notices
the loss and reopens the output at its first step after the device returns (it polls
every ``poll_s``), and the engine fades back in; nothing measured is lost.
"""

from __future__ import annotations

import time
from pathlib import Path

from heartsong.audio.device_sink import PyAudioSink
from heartsong.audio.engine import AudioEngine
from heartsong.audio.sinks import Sink
from heartsong.config import Config
from mqtt_tls import wait_for
from reliability.fake_audio import PluggableDac
from reliability.figures import record
from reliability.rig import base_config, build_rig

SPEED = 20.0
POLL_S = 0.05
LOST_REAL_S = 2.0
#: Reopened within this many real seconds after the device returns: one poll step, with
#: generous slack for a loaded machine.
REOPEN_BOUND_S = 5.0


def test_audio_device_lost_and_back(state_dir: Path) -> None:
    dac = PluggableDac()
    sinks: list[PyAudioSink] = []

    def make_sink(cfg: Config, engine: object) -> Sink:
        assert isinstance(engine, AudioEngine)
        sink = PyAudioSink(engine, "USB", backend=dac, poll_s=POLL_S, watch=dac.token)
        sinks.append(sink)
        return sink

    rig = build_rig(base_config(**{"sources.ble": True, "audio.output": "device"}),
                    speed=SPEED, state_dir=state_dir, sink=make_sink)
    sink = sinks[0]
    engine = rig.app.engine
    with rig.running() as result:
        assert wait_for(lambda: sink.state == "playing" and engine.frames_rendered > 0)
        assert wait_for(lambda: len(rig.produced) >= 3)
        dac.unplug()
        t_unplug = time.monotonic()
        assert wait_for(lambda: sink.state == "lost")
        detect_s = time.monotonic() - t_unplug
        updates_before = len(rig.produced)
        time.sleep(LOST_REAL_S)
        updates_while_lost = len(rig.produced) - updates_before
        frames_at_plug = engine.frames_rendered
        dac.plug()
        t_plug = time.monotonic()
        assert wait_for(lambda: sink.state == "playing"
                        and engine.frames_rendered > frames_at_plug + 1024)
        reopen_s = time.monotonic() - t_plug
        time.sleep(0.5)
    assert result == [0]
    lost = rig.lost_in_store()
    sup = sink.supervisor
    record(
        "audio_device_lost", title="Audio output (USB DAC) unplugged and back",
        faults=f"audio backend: device gone and stream dead for {LOST_REAL_S:.0f} s real, "
               "then back (device-watch hook fires)",
        outcome="kept running, exit 0; measured and stored in silence, faded back in",
        recovery=f"loss seen in {detect_s:.2f} s, output reopened {reopen_s:.2f} s after the "
                 f"device returned (real; supervisor polls every {POLL_S:g} s, bound "
                 f"{REOPEN_BOUND_S:.0f} s)",
        data_lost=lost, produced=len(rig.produced), memory=rig.memory_growth(),
        reopen_s=reopen_s, detect_s=detect_s, updates_while_lost=updates_while_lost,
        underruns=engine.underruns,
    )
    assert sup.loss_count == 1 and sup.reopen_count == 1
    assert updates_while_lost >= 1  # the appliance kept measuring in silence
    assert reopen_s <= REOPEN_BOUND_S
    assert lost == 0
    assert engine.callback_error is None
