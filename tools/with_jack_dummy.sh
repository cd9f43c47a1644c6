#!/usr/bin/env bash
# Run a command with a JACK server on the dummy driver: a headless audio device with a real
# audio clock, which PortAudio lists as "system" under the "JACK Audio Connection Kit" API.
#
#   tools/with_jack_dummy.sh COMMAND [ARG...]
#
# A server that already answers is reused and left alone; otherwise one is started for the
# command and stopped after it, whatever the command's outcome. Exits with the command's
# exit code (or 1 if the server it had to start never came up).
# Settings: JACK_DUMMY_RATE (Hz, default 48000), JACK_DUMMY_PERIOD (frames, default 256).
#
# When the server it started reported xruns, they are summed up on stderr at the end, split
# by cause: "driver late" = the dummy driver's own thread (SCHED_FIFO, another process)
# woke more than one period late, i.e. the host did not run it (on a shared VM: the
# virtual CPU was not scheduled); "client late" = a client had not finished its
# cycle when the next one began. A client only sees "an xrun happened" (PortAudio: an
# output underflow), whatever its cause.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]" >&2
  exit 2
fi

rate=${JACK_DUMMY_RATE:-48000}
period=${JACK_DUMMY_PERIOD:-256}

server_answers() {
  # jack_lsp never starts a server itself; it exits non-zero when none is running.
  jack_lsp >/dev/null 2>&1
}

if ! command -v jackd >/dev/null 2>&1 || ! command -v jack_lsp >/dev/null 2>&1; then
  echo "with_jack_dummy: jackd/jack_lsp not found (Debian package jackd2); running without JACK" >&2
  exec "$@"
fi

if server_answers; then
  echo "with_jack_dummy: using the JACK server already running"
  exec "$@"
fi

log=$(mktemp "${TMPDIR:-/tmp}/heartsong-jackd.XXXXXX.log")
# No device reservation over D-Bus: there is no session bus in CI containers or over SSH.
JACK_NO_AUDIO_RESERVATION=1 jackd -d dummy -r "$rate" -p "$period" >"$log" 2>&1 &
jackd_pid=$!

report_xruns() {
  local driver client
  driver=$(grep -c 'JackTimedDriver::Process XRun' "$log" || true)
  client=$(grep -c 'JackEngine::XRun' "$log" || true)
  if [ "$driver" -gt 0 ] || [ "$client" -gt 0 ]; then
    echo "with_jack_dummy: the server reported xruns: $driver driver late (its thread woke" \
      "more than a ${period}-frame period late), $client client late:" >&2
    grep -E 'JackTimedDriver::Process XRun|JackEngine::XRun' "$log" | head -n 20 >&2
  fi
}

stop_jackd() {
  if kill -0 "$jackd_pid" 2>/dev/null; then
    kill -TERM "$jackd_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$jackd_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$jackd_pid" 2>/dev/null || true
  fi
  wait "$jackd_pid" 2>/dev/null || true
  report_xruns
  rm -f "$log"
}
trap stop_jackd EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq 100); do
  server_answers && break
  if ! kill -0 "$jackd_pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if ! server_answers; then
  echo "with_jack_dummy: jackd -d dummy did not come up; its output:" >&2
  cat "$log" >&2
  exit 1
fi
echo "with_jack_dummy: started jackd -d dummy -r $rate -p $period (pid $jackd_pid)"

status=0
"$@" || status=$?
exit "$status"
