"""Keep the chatter of ALSA's and JACK's C libraries out of standard error (the journal).

PortAudio probes every ALSA PCM definition and the JACK server each time it starts; on a
board with the stock ``alsa.conf`` and no JACK server, libasound and libjack print some
60 lines to file descriptor 2 per start (``ALSA lib pcm.c:...: Unknown PCM cards.pcm.rear``,
``jack server is not running or cannot be started``). The device restarts PortAudio every
time it looks for a lost speaker again, so a night without one filled the journal with
hundreds of lines that say nothing the device's own one line per back-off step does not.

Both libraries let a program replace their message printer: ALSA with
``snd_lib_error_set_handler`` (alsa-lib, ``include/error.h``), JACK with
``jack_set_error_function`` and ``jack_set_info_function`` (``jack/jack.h``). The
replacement here drops the message (no I/O). A library that is not installed is skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["quiet_audio_libraries"]

# void handler(const char *file, int line, const char *function, int err, const char *fmt,
# ...): the variadic tail is not read, so the fixed part is all the callback declares.
_ALSA_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)
# void func(const char *msg)
_JACK_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)



def _on_alsa(_file: bytes, _line: int, _func: bytes, _err: int, _fmt: bytes) -> None:
    """ALSA's message, dropped."""


def _on_jack(_msg: bytes) -> None:
    """JACK's message, dropped."""


# Module-level: the C callbacks must outlive the libraries' pointers to them.
_ALSA_CALLBACK = _ALSA_HANDLER(_on_alsa)
_JACK_CALLBACK = _JACK_HANDLER(_on_jack)


def _library(name: str) -> ctypes.CDLL | None:
    found = ctypes.util.find_library(name)
    if found is None:
        return None
    try:
        return ctypes.CDLL(found)
    except OSError:
        return None


@functools.cache
def quiet_audio_libraries() -> None:
    """Install the silent message printers in libasound and libjack (once per process;
    call before PortAudio starts). Harmless where either library is missing."""
    alsa = _library("asound")
    if alsa is not None and hasattr(alsa, "snd_lib_error_set_handler"):
        alsa.snd_lib_error_set_handler(_ALSA_CALLBACK)
    jack = _library("jack")
    if jack is not None:
        for setter in ("jack_set_error_function", "jack_set_info_function"):
            if hasattr(jack, setter):
                getattr(jack, setter)(_JACK_CALLBACK)
