"""Recording readers: CSV, E4, RR files; repairs, refusals and error messages."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from heartsong.errors import InputDataError
from heartsong.recordings import read_e4, read_ppg_csv, read_recording, read_rr


def pulse(n: int, fs: float, seed: int = 0) -> np.ndarray:
    t = np.arange(n) / fs
    noise = 0.01 * np.random.default_rng(seed).standard_normal(n)
    return np.sin(2 * np.pi * 1.2 * t) + 0.3 * np.sin(2 * np.pi * 2.4 * t) + noise + 2.0


def write_csv(path: Path, header: str, rows: list[list[object]]) -> Path:
    lines = [header] + [",".join(str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ppg_column_found_by_name_any_case_and_time_s(tmp_path: Path) -> None:
    x = pulse(500, 50.0)
    rows = [[f"{i / 50:.4f}", 0.0, f"{v:.6f}"] for i, v in enumerate(x)]
    rec = read_ppg_csv(write_csv(tmp_path / "a.csv", "time_s, ECG , Pleth", rows))
    assert rec.column == "Pleth" and rec.kind == "ppg"
    assert rec.fs_hz == pytest.approx(50.0)
    assert rec.t_s is None
    np.testing.assert_allclose(rec.x, x, atol=1e-6)


def test_bidmc_style_header_and_rounded_times(tmp_path: Path) -> None:
    x = pulse(2000, 125.0)
    # Times printed with 5 significant digits repeat after 100 s, as in BIDMC files.
    rows = [[f"{float(f'{(i + 12000) / 125:.5g}')}", f"{v:.5f}"] for i, v in enumerate(x)]
    rec = read_ppg_csv(write_csv(tmp_path / "b.csv", "Time [s], PLETH", rows))
    assert rec.fs_hz == pytest.approx(125.0, rel=1e-3)


def test_column_option_and_fs_without_time(tmp_path: Path) -> None:
    x = pulse(300, 100.0)
    rows = [[f"{v:.6f}", f"{-v:.6f}"] for v in x]
    path = write_csv(tmp_path / "c.csv", "ECG,PPG", rows)
    rec = read_recording(path, column="ecg", fs_hz=100.0)
    assert rec.column == "ECG" and rec.fs_hz == 100.0
    with pytest.raises(InputDataError, match="--fs"):
        read_ppg_csv(path)  # no time column and no rate


def test_uneven_ms_times_are_returned_for_resampling(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t_ms = np.cumsum(rng.integers(20, 48, size=900))
    x = pulse(900, 30.0)
    rows = [[int(a), f"{v:.3f}", 0, 0] for a, v in zip(t_ms, x, strict=True)]
    rec = read_ppg_csv(write_csv(tmp_path / "w.csv", "time,R,G,B", rows), column="R")
    assert rec.fs_hz is None and rec.t_s is not None
    assert rec.t_s[0] == 0.0
    assert rec.t_s[-1] == pytest.approx((t_ms[-1] - t_ms[0]) / 1000.0)
    assert any("ms" in n for n in rec.notes) and any("uneven" in n for n in rec.notes)


def test_short_nan_runs_are_filled_long_ones_left_as_gaps(tmp_path: Path) -> None:
    x = pulse(1000, 50.0).astype(object)
    x[100:103] = "nan"
    x[500:600] = ""
    rows = [[f"{i / 50:.3f}", v] for i, v in enumerate(x)]
    rec = read_ppg_csv(write_csv(tmp_path / "n.csv", "time_s,ppg", rows))
    assert np.isfinite(rec.x[100:103]).all()
    assert np.isnan(rec.x[500:600]).all()
    assert any("interpolated" in n for n in rec.notes)


def test_flat_stretch_becomes_a_gap_clipping_is_flagged(tmp_path: Path) -> None:
    x = pulse(3000, 50.0)
    x[1000:1200] = 1.7  # 4 s of a constant value
    top = np.quantile(x, 0.99)
    x = np.minimum(x, top)
    rows = [[f"{v:.6f}"] for v in x]
    rec = read_ppg_csv(write_csv(tmp_path / "f.csv", "bvp", rows), fs_hz=50.0)
    assert np.isnan(rec.x[1000:1200]).all()
    assert 0.5 < rec.clipped_pct < 5.0


@pytest.mark.parametrize(
    ("header", "rows", "kwargs", "match"),
    [
        ("ppg", [], {"fs_hz": 50.0}, "at least one row"),
        ("ecg,resp", [[1, 2]] * 200, {"fs_hz": 50.0}, "PPG column"),
        ("ppg", [[1.0]] * 200, {"fs_hz": 50.0}, "flat line"),
        ("ppg", [[2.0], [2.0], [1.0]] * 100, {"fs_hz": 50.0}, "unclipped"),
        ("ppg", [[1.0], [2.0]] * 100, {"fs_hz": 10.0}, "20 Hz"),
        ("ppg", [["x"]] + [[1.0]] * 200, {"fs_hz": 50.0}, "line 2, column ppg: a number"),
        ("ppg", [["nan"]] * 200, {"fs_hz": 50.0}, "numeric samples"),
        ("ppg", [[1.0], [2.0]], {"fs_hz": 50.0}, "column ppg: at least 2 s"),  # not "clipped"
    ],
)
def test_bad_csv_is_refused_naming_the_problem(
    tmp_path: Path, header: str, rows: list[list[object]], kwargs: dict[str, float], match: str
) -> None:
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(InputDataError, match=match):
        read_ppg_csv(path, **kwargs)


def test_empty_file_and_missing_named_column(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("\n")
    with pytest.raises(InputDataError, match="non-empty"):
        read_ppg_csv(empty, fs_hz=50.0)
    path = write_csv(tmp_path / "c.csv", "ppg", [[1.0], [2.0]] * 100)
    with pytest.raises(InputDataError, match="column 'pulse'"):
        read_ppg_csv(path, column="pulse", fs_hz=50.0)
    with pytest.raises(InputDataError, match="readable"):
        read_ppg_csv(tmp_path / "missing.csv", fs_hz=50.0)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b",,\n,,\n", "first row naming the columns"),
        (b'ppg\n"1.0\n' + b"2.0\n" * 70000, "comma-separated text file"),  # unclosed quote
        (bytes(range(256)) * 4, "NUL bytes"),
        ("ppg\n".encode("utf-16"), "NUL bytes"),
    ],
)
def test_files_the_csv_module_cannot_read_are_refused_naming_the_file(
    tmp_path: Path, content: bytes, match: str
) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    with pytest.raises(InputDataError, match=match) as info:
        read_ppg_csv(path, fs_hz=50.0)
    assert str(path) in str(info.value)


def test_a_bare_time_column_gives_way_to_fs_and_a_sample_counter_is_not_time(
    tmp_path: Path,
) -> None:
    x = [[k, f"{1.0 + (k % 25) / 25:.3f}"] for k in range(500)]
    counter = write_csv(tmp_path / "counter.csv", "t,ppg", x)
    with pytest.raises(InputDataError, match="column t counts samples"):
        read_ppg_csv(counter)  # it was read as milliseconds: 1000 Hz, 0.5 s
    assert read_ppg_csv(counter, fs_hz=50.0).fs_hz == 50.0
    clock = write_csv(tmp_path / "clock.csv", "timestamp,ppg",
                      [[f"22:00:{k // 50:02d}.{2 * (k % 50):02d}", v] for k, (_, v) in
                       enumerate(x)])
    with pytest.raises(InputDataError, match="or give --fs"):
        read_ppg_csv(clock)
    rec = read_ppg_csv(clock, fs_hz=50.0)
    assert rec.fs_hz == 50.0 and "not read as time" in rec.notes[0]


def test_old_mac_line_endings_read_like_any_other(tmp_path: Path) -> None:
    rows = "\r".join(f"{1.0 + (k % 25) / 25:.3f}" for k in range(500))
    path = tmp_path / "cr.csv"
    path.write_bytes(f"ppg\r{rows}\r".encode())
    assert read_ppg_csv(path, fs_hz=50.0).x.size == 500


def test_rr_export_keeps_its_beat_times_and_gaps(tmp_path: Path) -> None:
    """``heartsong export``'s RR file (beat_time_s, rr_ms, gap_before) read back: the
    times and gap flags come along; a missing interval flags the next one as a gap."""
    rows = [[100.8, 800, 1], [101.6, 800, 0], [102.4, "", 0], [103.2, 800, 0],
            [110.0, 800, 1], [110.8, 800, 0]]
    write_csv(tmp_path / "x_rr_1.csv", "beat_time_s,rr_ms,gap_before", rows)
    rec = read_rr(tmp_path / "x_rr_1.csv")
    assert rec.rr_ms is not None and rec.rr_ms.size == 5
    assert rec.rr_t_s is not None and rec.rr_t_s.tolist() == [100.8, 101.6, 103.2, 110.0, 110.8]
    assert rec.rr_gap_before is not None
    assert rec.rr_gap_before.tolist() == [True, False, True, True, False]
    write_csv(tmp_path / "back.csv", "beat_time_s,rr_ms", [[5.0, 800], [4.0, 800]])
    with pytest.raises(InputDataError, match="beat times that increase"):
        read_rr(tmp_path / "back.csv")
    write_csv(tmp_path / "flag.csv", "beat_time_s,rr_ms,gap_before", [[1, 800, 0], [2, 800, 3]])
    with pytest.raises(InputDataError, match="line 3, column gap_before: 0 or 1"):
        read_rr(tmp_path / "flag.csv")


def test_e4_file_plain_and_gzip(tmp_path: Path) -> None:
    x = pulse(640, 64.0)
    text = "1600000000.000000\n64.000000\n" + "\n".join(f"{v:.3f}" for v in x) + "\n"
    plain = tmp_path / "BVP.csv"
    plain.write_text(text)
    packed = tmp_path / "BVP.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        rec = read_recording(path, fmt="e4")
        assert rec.fs_hz == 64.0
        np.testing.assert_allclose(rec.x, x, atol=1e-3)
        assert rec.invert is False  # Empatica's BVP rises with the pulse
    assert read_recording(write_csv(tmp_path / "p.csv", "ppg", [[v] for v in x]),
                          fs_hz=64.0).invert is None  # a CSV: the pulse shape decides
    bad = tmp_path / "bad.csv"
    bad.write_text("1600000000\n0\n1\n2\n")
    with pytest.raises(InputDataError, match="line 2"):
        read_e4(bad)
    slow = tmp_path / "slow.csv"  # the rate is the file's line 2, not an --fs nobody gave
    slow.write_text("1600000000\n10\n" + "\n".join(f"{v:.3f}" for v in x[:100]) + "\n")
    with pytest.raises(InputDataError, match=r"line 2 \(sampling rate\): a sampling rate"):
        read_e4(slow)


def test_rr_formats(tmp_path: Path) -> None:
    values = [812, 790, 845, 830]
    (tmp_path / "lines.txt").write_text("\n".join(map(str, values)) + "\n")
    (tmp_path / "spaces.txt").write_text(" ".join(map(str, values)))
    write_csv(tmp_path / "rr.csv", "t_s,RR_ms", [[i, v] for i, v in enumerate(values)])
    for name in ("lines.txt", "spaces.txt", "rr.csv"):
        rec = read_rr(tmp_path / name)
        assert rec.kind == "rr"
        np.testing.assert_array_equal(rec.rr_ms, values)
    (tmp_path / "sec.txt").write_text("0.81\n0.79\n0.84\n")
    with pytest.raises(InputDataError, match="seconds"):
        read_rr(tmp_path / "sec.txt")
    (tmp_path / "neg.txt").write_text("800\n-5\n")
    with pytest.raises(InputDataError, match="positive"):
        read_rr(tmp_path / "neg.txt")
    write_csv(tmp_path / "nocol.csv", "time,value", [[0, 800], [1, 810]])
    with pytest.raises(InputDataError, match="rr_ms column"):
        read_rr(tmp_path / "nocol.csv")
    assert math.isclose(float(read_rr(tmp_path / "lines.txt").rr_ms.sum()), sum(values))
