"""The output supervisor: loss detection, back-off, reopening, logging, the device sink.

Unit tests drive :class:`OutputSupervisor` with an injected backend (a fake that speaks the
backend protocol: a device list that can lose and regain the DAC, streams that can stop
under the supervisor) and their own clock. The JACK test runs the real PyAudio backend on
the JACK dummy device and closes the real stream under the sink.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from heartsong.audio.device_sink import PyAudioSink
from heartsong.audio.engine import AudioEngine
from heartsong.audio.portaudio import (
    OutputBackend,
    OutputDevice,
    OutputStream,
    PortAudioBackend,
    StreamCallback,
)
from heartsong.audio.sinks import Sink
from heartsong.audio.supervisor import Backoff, OutputSupervisor
from heartsong.errors import AudioDeviceError, InputDataError
from heartsong.events import SoundTargets

DAC = OutputDevice(1, "USB Audio DAC: - (hw:1,0)", "ALSA", 2, 0.008)
HDMI = OutputDevice(0, "vc4-hdmi: - (hw:0,0)", "ALSA", 2, 0.02)


@dataclass
class FakeStream:
    """A stream whose callback never runs by itself; ``pull`` calls it like PortAudio."""

    callback: StreamCallback
    device: OutputDevice
    active: bool = False
    closed: bool = False
    starts: int = 0

    def start(self) -> None:
        if self.closed:
            raise AudioDeviceError("stream closed")
        self.active = True
        self.starts += 1

    def stop(self) -> None:
        self.active = False

    def close(self) -> None:
        self.active = False
        self.closed = True

    def is_active(self) -> bool:
        return self.active

    @property
    def latency_s(self) -> float:
        return self.device.default_low_latency_s

    def pull(self, blocks: int = 1) -> None:
        """PortAudio asking for ``blocks`` buffers of 256 frames."""
        for _ in range(blocks):
            self.callback(None, 256, None, 0)


@dataclass
class FakeBackend:
    """Devices that come and go; ``refuse`` makes opening fail (device busy)."""

    present: list[OutputDevice] = field(default_factory=lambda: [HDMI, DAC])
    refuse: bool = False
    streams: list[FakeStream] = field(default_factory=list)
    stream_class: type[FakeStream] = FakeStream
    rescans: int = 0
    closed: int = 0
    _seen: list[OutputDevice] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._seen = list(self.present)

    def devices(self) -> list[OutputDevice]:
        return list(self._seen)  # what the last scan saw, like PortAudio

    def default_device(self) -> OutputDevice | None:
        return self._seen[0] if self._seen else None

    def rescan(self) -> None:
        self.rescans += 1
        self._seen = list(self.present)

    def open(self, device: OutputDevice, rate_hz: int, frames: int,
             callback: StreamCallback) -> OutputStream:
        if self.refuse or device not in self.present:
            raise AudioDeviceError(f"cannot open audio output {device.name!r}")
        stream = self.stream_class(callback, device)
        self.streams.append(stream)
        return stream

    def close(self) -> None:
        self.closed += 1


def test_fakes_speak_the_protocols() -> None:
    backend = FakeBackend()
    assert isinstance(backend, OutputBackend)
    assert isinstance(backend.open(DAC, 48000, 256, lambda *a: (b"", 0)), OutputStream)
    assert isinstance(PortAudioBackend(), OutputBackend)


@pytest.fixture(scope="module")
def engine() -> AudioEngine:
    e = AudioEngine(fade_s=0.2)
    e.warm_up()
    e.set_targets(SoundTargets("brown_noise", volume_db=-30.0))
    return e


def supervisor(engine: AudioEngine, backend: FakeBackend, watch: Callable[[], object] | None = None,
               **kw: object) -> OutputSupervisor:
    sup = OutputSupervisor(backend, engine, "usb audio", backoff=Backoff(0.5, 2.0, 8.0),
                           stall_s=2.0, watch=watch, **kw)  # type: ignore[arg-type]
    sup.open()
    return sup


def messages(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def test_opens_the_named_device_or_lists_what_there_is(engine: AudioEngine) -> None:
    backend = FakeBackend()
    sup = supervisor(engine, backend)
    assert sup.device == DAC.name and sup.state == "stopped"
    assert sup.latency_s == DAC.default_low_latency_s
    sup.start(0.0)
    assert sup.state == "playing" and sup.is_active
    with pytest.raises(AudioDeviceError) as err:
        OutputSupervisor(FakeBackend(present=[HDMI]), engine, "usb audio").open()
    assert "'usb audio'" in str(err.value) and repr(HDMI.name) in str(err.value)
    default = OutputSupervisor(FakeBackend(), engine, "")
    default.open()
    assert default.device == HDMI.name  # "" = the default output
    with pytest.raises(InputDataError, match="stall_s"):
        OutputSupervisor(backend, engine, stall_s=0.0)


def test_a_stopped_stream_is_lost_then_reopened_with_back_off(
    engine: AudioEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="heartsong.audio.supervisor")
    backend = FakeBackend()
    sup = supervisor(engine, backend)
    sup.start(0.0)
    first = backend.streams[0]
    first.pull(4)
    sup.poll(0.5)
    assert sup.state == "playing"
    backend.present = [HDMI]  # the DAC is unplugged: PortAudio ends the stream
    first.active = False
    sup.poll(1.0)
    assert sup.state == "lost" and first.closed and sup.loss_count == 1
    assert sup.next_attempt_at == pytest.approx(1.5)
    # attempts at 1.5, then every 1, 2, 4, 8, 8 ... s while the DAC stays away
    now, attempts_at = 1.0, []
    while now < 40.0:
        now += 0.25
        before = sup.attempts
        sup.poll(now)
        if sup.attempts != before:
            attempts_at.append(now)
    np.testing.assert_allclose(np.diff(attempts_at), [1.0, 2.0, 4.0, 8.0, 8.0, 8.0])
    assert attempts_at[0] == 1.5 and backend.rescans == len(attempts_at)
    # one warning for the loss, one line per attempt until the longest delay, then quiet
    info = messages(caplog)
    assert sum("lost" in m for m in info) == 1
    assert sum("unavailable (attempt" in m for m in info) == 3
    assert sum("retrying every 8 s from now on" in m for m in info) == 1
    assert len(info) == 5
    caplog.clear()
    backend.present = [HDMI, DAC]  # plugged back in
    sup.poll(now + 8.0)
    assert sup.state == "playing" and sup.reopen_count == 1 and sup.attempts == 0
    assert len(backend.streams) == 2 and backend.streams[1].active
    assert any("reopened after 8 attempt(s)" in m for m in messages(caplog))  # 7 failed


def test_reopened_output_fades_in_from_silence() -> None:
    engine = AudioEngine(fade_s=0.5, seed=2)
    engine.warm_up()
    engine.set_targets(SoundTargets("ocean", volume_db=-20.0))
    backend = FakeBackend()
    sup = supervisor(engine, backend)
    sup.start(0.0)
    out = np.zeros((256, 2), dtype=np.float32)
    for _ in range(400):
        engine.render(out)
    level = float(np.abs(out).max())
    backend.streams[0].active = False
    sup.poll(1.0)
    sup.poll(1.6)
    assert sup.state == "playing"
    engine.render(out)
    assert float(np.abs(out).max()) < 0.05 * level  # the first buffer after the reopen


def test_a_callback_during_start_already_fades_in() -> None:
    """PortAudio may call back before start() returns (PyAudio releases the GIL there):
    that first block came at the old level and the fade flag cut it a block later."""
    engine = AudioEngine(fade_s=0.5, seed=2)
    engine.warm_up()
    engine.set_targets(SoundTargets("warm_drone", volume_db=-12.0))
    out = np.zeros((256, 2), dtype=np.float32)
    first: list[float] = []

    class EagerStream(FakeStream):
        def start(self) -> None:
            super().start()
            engine.render(out)  # a callback inside start()
            first.append(float(np.abs(out[:16]).max()))

    backend = FakeBackend(stream_class=EagerStream)
    sup = supervisor(engine, backend)
    sup.start(0.0)
    for _ in range(400):
        engine.render(out)
    level = float(np.abs(out).max())
    backend.streams[-1].active = False
    sup.poll(1.0)
    sup.poll(1.6)
    assert sup.state == "playing" and len(first) == 2
    assert first[-1] < 0.01 * level  # from silence, not the level before the loss


def test_a_stalled_callback_counts_as_lost(engine: AudioEngine) -> None:
    backend = FakeBackend()
    sup = supervisor(engine, backend)
    sup.start(0.0)
    stream = backend.streams[0]
    for t in (0.5, 1.0, 1.5, 2.0):  # callbacks keep coming: fine
        stream.pull()
        sup.poll(t)
    assert sup.state == "playing"
    sup.poll(3.0)
    sup.poll(3.9)  # 1.9 s without a callback: still fine
    assert sup.state == "playing"
    sup.poll(4.1)  # 2.1 s: the device stopped asking, although PortAudio says active
    assert sup.state == "lost" and stream.closed


def test_a_device_list_change_retries_at_once(engine: AudioEngine) -> None:
    cards = ["0 [vc4hdmi]"]
    backend = FakeBackend()
    sup = supervisor(engine, backend, watch=lambda: tuple(cards))
    sup.start(0.0)
    backend.present = [HDMI]
    backend.streams[0].active = False
    sup.poll(1.0)
    for t in (1.5, 2.5):  # two failed attempts: the next one is due at 4.5 s
        sup.poll(t)
    assert sup.attempts == 2 and sup.next_attempt_at == pytest.approx(4.5)
    backend.present = [HDMI, DAC]
    sup.poll(2.6)  # the DAC is back but nothing says so yet: wait for the back-off
    assert sup.state == "lost"
    cards.append("1 [DAC]")  # udev/ALSA lists the new card
    sup.poll(2.7)
    assert sup.state == "playing" and sup.reopen_count == 1


def test_callback_error_and_refused_open_are_handled(engine: AudioEngine) -> None:
    engine2 = AudioEngine()
    backend = FakeBackend()
    sup = supervisor(engine2, backend)
    sup.start(0.0)
    engine2._callback_error = RuntimeError("boom")
    sup.poll(0.5)
    assert sup.state == "lost"
    backend.refuse = True  # the device is listed but busy
    sup.poll(1.0)
    assert sup.state == "lost" and sup.attempts == 1
    backend.refuse = False
    sup.poll(2.0)
    assert sup.state == "playing"
    sup.poll(2.5)  # the old error is not reported twice
    assert sup.state == "playing"


def test_stop_while_lost_stops_retrying_and_start_resumes(engine: AudioEngine) -> None:
    backend = FakeBackend()
    sup = supervisor(engine, backend)
    sup.start(0.0)
    backend.present = [HDMI]
    backend.streams[0].active = False
    sup.poll(1.0)
    sup.stop()
    assert sup.state == "stopped"
    rescans = backend.rescans
    sup.poll(100.0)
    assert backend.rescans == rescans  # no attempts while stopped
    backend.present = [HDMI, DAC]
    sup.start(101.0)
    sup.poll(101.0)
    assert sup.state == "playing" and backend.streams[-1].active
    sup.close()
    sup.close()
    assert sup.state == "closed" and backend.streams[-1].closed


def test_backoff_validates_and_grows_to_its_cap() -> None:
    b = Backoff(0.5, 2.0, 30.0)
    assert [b.delay_s(k) for k in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert Backoff(1.0, 1.0, 1.0).delay_s(10**6) == 1.0
    for kwargs, name in (({"first_s": 0.0}, "first_s"), ({"factor": 0.5}, "factor"),
                         ({"first_s": 5.0, "max_s": 1.0}, "max_s")):
        with pytest.raises(InputDataError, match=name):
            Backoff(**kwargs)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the sink
def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_sink_starts_without_its_device_and_plays_when_it_arrives(engine: AudioEngine) -> None:
    backend = FakeBackend(present=[HDMI])
    with pytest.raises(AudioDeviceError):
        PyAudioSink(engine, "usb audio", backend=backend, watch=None)
    assert backend.closed == 1
    sink = PyAudioSink(engine, "usb audio", backend=backend, require_device=False,
                       backoff=Backoff(0.02, 1.0, 0.02), poll_s=0.01, watch=None)
    assert isinstance(sink, Sink) and sink.realtime and sink.state == "lost"
    assert sink.pump(engine, 1.0) == 0
    sink.start()  # the appliance runs on without sound
    assert sink.state == "lost" and not sink.is_active
    backend.present = [HDMI, DAC]  # the DAC is plugged in
    assert wait_until(lambda: sink.state == "playing")
    assert sink.device == DAC.name and sink.is_active and sink.supervisor.reopen_count == 1
    sink.stop()
    assert not sink.is_active
    sink.close()
    sink.close()
    assert sink.state == "closed"
    with pytest.raises(AudioDeviceError):
        sink.start()


# ----------------------------------------------------------------------------- JACK
class PullablePlug:
    """Wraps a real PortAudio stream; once ``pulled``, the next look at it (on the
    supervisor's thread, as PortAudio itself would) stops and closes the real stream, as
    when a USB DAC disappears. PortAudio streams must not be closed from a second thread
    while another one queries them, so the test only flips the flag."""

    def __init__(self, inner: OutputStream) -> None:
        self.inner = inner
        self.pulled = False
        self.gone = False

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def close(self) -> None:
        self.inner.close()

    def is_active(self) -> bool:
        if self.pulled and not self.gone:
            self.gone = True
            self.inner.stop()
            self.inner.close()  # the real stream is gone under the supervisor
        return self.inner.is_active()

    @property
    def latency_s(self) -> float:
        return self.inner.latency_s


class RecordingBackend(PortAudioBackend):
    """The real PortAudio backend, keeping the streams it opens behind a pullable plug."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[PullablePlug] = []

    def open(self, device: OutputDevice, rate_hz: int, frames: int,
             callback: StreamCallback) -> OutputStream:
        plug = PullablePlug(super().open(device, rate_hz, frames, callback))
        self.opened.append(plug)
        return plug


@pytest.mark.jack
def test_reopens_a_real_stream_closed_under_it(jack_server: object,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="heartsong.audio.supervisor")
    engine = AudioEngine(fade_s=0.1)
    engine.set_targets(SoundTargets("rain", volume_db=-30.0))
    backend = RecordingBackend()
    sink = PyAudioSink(engine, "system", backend=backend, backoff=Backoff(0.05, 2.0, 1.0),
                       poll_s=0.02, watch=None)
    try:
        sink.start()
        assert wait_until(lambda: engine.frames_rendered > 20 * 256)
        backend.opened[0].pulled = True  # the device goes away under the running stream
        assert wait_until(lambda: sink.supervisor.reopen_count == 1)
        assert backend.opened[0].gone and len(backend.opened) == 2
        assert sink.state == "playing"
        frames = engine.frames_rendered
        assert wait_until(lambda: engine.frames_rendered > frames + 20 * 256)  # sound again
        assert sink.is_active
    finally:
        sink.close()
    lines = messages(caplog)
    assert sum("lost" in m for m in lines) == 1
    assert sum("reopened" in m for m in lines) == 1
    assert engine.callback_error is None


def test_portaudio_start_keeps_alsa_and_jack_chatter_off_stderr() -> None:
    """Each PortAudio start printed ~60 lines of ALSA and JACK messages to stderr, and
    the device restarts PortAudio every time it looks for a lost speaker again."""
    import subprocess
    import sys

    pytest.importorskip("pyaudio")
    code = (
        "from heartsong.audio.portaudio import PortAudioBackend\n"
        "b = PortAudioBackend()\n"
        "for _ in range(3):\n"
        "    b.devices(); b.rescan()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert "ALSA lib" not in res.stderr and "jack server" not in res.stderr, res.stderr
    assert "Jack" not in res.stderr, res.stderr
