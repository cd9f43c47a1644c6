"""The ``heartsong`` command: run, demo, analyze, data, export, report, doctor, config.

Exit codes: 0 success, 1 a required part is missing (doctor) or an unexpected failure,
2 bad configuration or usage (one line on standard error that names the key).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from heartsong import __version__
from heartsong.errors import ConfigError, HeartsongError

if TYPE_CHECKING:
    from heartsong.config import Config

log = logging.getLogger("heartsong.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
#: Commands that log at ``device.log_level`` (the others log warnings only).
_LOGGING_COMMANDS = frozenset({"run", "demo"})
#: The fastest ``demo --speed``: simulated seconds per real second.
MAX_DEMO_SPEED = 10000.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="heartsong",
        description="A bedside device that listens to the heart and answers with sound.",
    )
    p.add_argument("--version", action="version", version=f"heartsong {__version__}")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="configuration file (default /etc/heartsong/config.toml if it exists)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the device on its hardware, as configured")

    d = sub.add_parser("demo", help="run the whole device in simulation")
    d.add_argument("--duration", type=float, default=None, metavar="S",
                   help="simulated seconds to run (default: until Ctrl-C)")
    d.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="simulated seconds per real second (default 1)")
    d.add_argument("--seed", type=int, default=None, metavar="N",
                   help="seed of the simulated person (default: simulation.seed)")
    d.add_argument("--audio", default="none", metavar="none|device|wav:PATH",
                   help="where the sound goes (default none)")
    d.add_argument("--mqtt", default=None, metavar="HOST:PORT",
                   help="publish to this MQTT broker")
    d.add_argument("--ble", action=argparse.BooleanOptionalAction, default=True,
                   help="simulate a BLE chest strap as well as the PPG sensor (default on)")
    d.add_argument("--state-dir", default=None, metavar="DIR",
                   help="record the simulated session in DIR's session store")

    sub.add_parser("doctor", help="check the hardware, audio, Bluetooth, broker and config")

    from heartsong import analyze_cmd

    analyze_cmd.add_parser(sub)

    from heartsong import audio_cmd, store_cmd

    store_cmd.add_parser(sub)
    audio_cmd.add_parser(sub)

    c = sub.add_parser("config", help="show the effective configuration")
    c.add_argument("--print", dest="print_", action="store_true", required=True,
                   help="print the effective configuration as TOML")
    return p


def _demo_overrides(args: argparse.Namespace) -> dict[str, object]:
    """Turn demo flags into dotted config overrides (validated like the file)."""
    o: dict[str, object] = {"sources.ppg": True, "sources.ble": bool(args.ble)}
    if args.seed is not None:
        o["simulation.seed"] = args.seed
    audio: str = args.audio
    if audio == "none" or audio == "device":
        o["audio.output"] = audio
    elif audio.startswith("wav:") and len(audio) > 4:
        o["audio.output"] = "wav"
        o["audio.wav_path"] = audio[4:]
    else:
        raise ConfigError("<command line>", "--audio", audio, "must be none, device or wav:PATH")
    if args.mqtt is not None:
        host, sep, port = str(args.mqtt).rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError("<command line>", "--mqtt", args.mqtt, "must be HOST:PORT")
        o.update({"mqtt.enabled": True, "mqtt.host": host, "mqtt.port": int(port)})
    return o


def _print_status_line(line: str) -> None:
    if sys.stdout.isatty():
        print("\r\x1b[2K" + line, end="", flush=True)
    else:
        print(line, flush=True)


def _cmd_demo(cfg: Config, args: argparse.Namespace) -> int:
    from heartsong.config import with_overrides
    from heartsong.status import format_status
    from heartsong.wiring import build_demo

    if not 0 < args.speed <= MAX_DEMO_SPEED:
        raise ConfigError("<command line>", "--speed", args.speed,
                          f"must be a number > 0 and at most {MAX_DEMO_SPEED:g}")
    if args.duration is not None and not 0 < args.duration < math.inf:
        raise ConfigError("<command line>", "--duration", args.duration,
                          "must be seconds > 0 (leave it out to run until stopped)")
    cfg = with_overrides(cfg, _demo_overrides(args))
    app = build_demo(
        cfg,
        speed=args.speed,
        on_status=lambda s: _print_status_line(format_status(s)),
        state_dir=args.state_dir,
    )
    print(
        f"heartsong demo: simulated person (seed {cfg.simulation.seed}), speed {args.speed:g}x, "
        f"audio {cfg.audio.output}, sources {'ppg+ble' if cfg.sources.ble else 'ppg'}",
        flush=True,
    )
    code = asyncio.run(app.run(args.duration))
    if sys.stdout.isatty():
        print()
    return code


def _cmd_run(cfg: Config) -> int:
    from heartsong.wiring import build_device

    app = build_device(cfg)
    code = asyncio.run(app.run())
    if app.power_off_requested:
        from heartsong.power import power_off

        power_off()
    return code


def _cmd_doctor(cfg: Config, path: str, config_error: str = "") -> int:
    """The doctor's report; a refused configuration is one failed check among the
    others (checked against the defaults), and the exit code is then 2."""
    from heartsong.doctor import exit_code, format_report, run_doctor

    checks = run_doctor(cfg, path, config_error=config_error)
    print(format_report(checks))
    return EXIT_USAGE if config_error else exit_code(checks)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``heartsong`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    from heartsong.config import DEFAULT_PATH, load_config, render_toml
    from heartsong.logs import setup_logging

    path: Path | None = args.config
    shown_path = str(path) if path is not None else (
        str(DEFAULT_PATH) if DEFAULT_PATH.exists() else "<defaults>"
    )
    try:
        cfg = load_config(path)
        # The device's log is for the journal; a one-shot command (analyze, export, ...)
        # speaks through its output and its one-line errors, and logs only warnings
        # unless debugging was asked for.
        level = cfg.device.log_level
        if args.command not in _LOGGING_COMMANDS and level != "debug":
            level = "warning"
        setup_logging(level, cfg.device.log_format)
        if args.command == "analyze":
            from heartsong import analyze_cmd

            return analyze_cmd.run(args)
        from heartsong import audio_cmd, store_cmd

        if args.command in ("soundscapes", "render"):
            return audio_cmd.run(args, cfg)
        if args.command in store_cmd.COMMANDS:
            return store_cmd.run(args, cfg.device.state_dir)
        if args.command == "config":
            print(f"# effective configuration from {shown_path}")
            print(render_toml(cfg), end="")
            return EXIT_OK
        if args.command == "doctor":
            return _cmd_doctor(cfg, shown_path)
        if args.command == "demo":
            return _cmd_demo(cfg, args)
        return _cmd_run(cfg)
    except ConfigError as exc:
        print(f"heartsong: config error: {exc.one_line()}", file=sys.stderr)
        if args.command == "doctor":
            from heartsong.config import Config as Defaults

            return _cmd_doctor(Defaults(), shown_path, config_error=exc.one_line())
        return EXIT_USAGE
    except HeartsongError as exc:
        print(f"heartsong: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
