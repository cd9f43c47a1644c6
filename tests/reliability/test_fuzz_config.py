"""Fuzzing configuration *files*: random TOML text and damaged copies of the example.

``tests/test_config.py`` fuzzes parsed mappings and overrides. What reaches the device,
though, is a file: one an editor saved half-way, a copy with a typo, a file of another
encoding. Here hypothesis writes random text, byte-level damage of the shipped example
(``config/heartsong.example.toml``: bytes flipped, cut, duplicated lines) and single-line
edits that put a random TOML value under a real key, and loads each through
:func:`heartsong.config.load_config`, as ``heartsong run`` does. The promise: a valid
:class:`Config` or a :class:`ConfigError` whose one line names the file, nothing else.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from heartsong.config import Config, load_config
from heartsong.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "heartsong.example.toml"
_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow,
                                            HealthCheck.function_scoped_fixture])


def _load(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        line = exc.one_line()
        assert line.startswith(str(path)) and "\n" not in line, line
        return
    assert isinstance(cfg, Config)


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(EXAMPLE.read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "cut", "insert", "dup_line"]))
        k = draw(st.integers(0, max(0, len(data) - 1)))
        if how == "flip" and data:
            data[k] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[k:k + draw(st.integers(1, 200))]
        elif how == "insert":
            data[k:k] = draw(st.binary(min_size=1, max_size=8))
        else:
            lines = bytes(data).splitlines(keepends=True)
            j = draw(st.integers(0, max(0, len(lines) - 1)))
            data = bytearray(b"".join([*lines[: j + 1], *lines[j:]]))
    return bytes(data)


_VALUES = st.one_of(
    st.sampled_from(['""', "-1", "0", "1e999", "nan", "inf", "true", "[]", "{}", '"x"',
                     "1979-05-27T07:32:00Z", "07:32:00", '"\\u0000"', "0x7fffffff",
                     "99999999999999999999", "[1, 2]", "'a'", '"""x"""']),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**70), 2**70).map(str),
)


@st.composite
def _edited(draw: st.DrawFn) -> bytes:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    keys = [k for k, ln in enumerate(lines) if "=" in ln and not ln.lstrip().startswith("#")]
    k = draw(st.sampled_from(keys))
    name = lines[k].split("=", 1)[0].strip()
    lines[k] = f"{name} = {draw(_VALUES)}"
    return ("\n".join(lines) + "\n").encode("utf-8")


@_SETTINGS
@given(st.one_of(st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.binary(max_size=300)))
def test_random_files_load_or_raise_config_error(tmp_path: Path, data: bytes) -> None:
    _load(tmp_path, data)


@_SETTINGS
@given(_damaged())
def test_damaged_example_loads_or_raises_config_error(tmp_path: Path, data: bytes) -> None:
    _load(tmp_path, data)


@_SETTINGS
@given(_edited())
def test_a_random_value_under_a_real_key_loads_or_raises_config_error(
    tmp_path: Path, data: bytes
) -> None:
    _load(tmp_path, data)
