"""Write hw/wiring.svg: the 40-pin header and what connects to each used pin.

Usage: ``python tools/gen_wiring_svg.py [OUT.svg]``. The connections are the table in
hw/WIRING.md (BCM numbers match the configuration's defaults).
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

# physical pin -> (label on the header, colour, part and signal)
CONNECTIONS: dict[int, tuple[str, str, str]] = {
    1: ("3V3", "#d62728", "MAX30102 VIN"),
    2: ("5V", "#d62728", "MAX98357A VIN"),
    3: ("GPIO2 SDA", "#1f77b4", "MAX30102 SDA"),
    5: ("GPIO3 SCL", "#17becf", "MAX30102 SCL"),
    6: ("GND", "#333333", "MAX98357A GND"),
    7: ("GPIO4", "#9467bd", "MAX30102 INT"),
    9: ("GND", "#333333", "MAX30102 GND"),
    11: ("GPIO17", "#2ca02c", "button play/pause -> GND"),
    12: ("GPIO18 BCLK", "#ff7f0e", "MAX98357A BCLK"),
    13: ("GPIO27", "#2ca02c", "button next -> GND"),
    14: ("GND", "#333333", "buttons GND"),
    15: ("GPIO22", "#2ca02c", "button volume + -> GND"),
    16: ("GPIO23", "#2ca02c", "button volume - -> GND"),
    29: ("GPIO5", "#d62728", "RGB red via 220 R (optional)"),
    31: ("GPIO6", "#2ca02c", "RGB green via 150 R (optional)"),
    32: ("GPIO12", "#bcbd22", "status LED via 330 R"),
    33: ("GPIO13", "#1f77b4", "RGB blue via 150 R (optional)"),
    34: ("GND", "#333333", "status LED cathode"),
    35: ("GPIO19 LRCLK", "#ff7f0e", "MAX98357A LRC"),
    39: ("GND", "#333333", "RGB LED common cathode"),
    40: ("GPIO21 DOUT", "#ff7f0e", "MAX98357A DIN"),
}

ROW_H = 22
TOP = 60


def render() -> str:
    """The SVG document as text."""
    w, h = 980, TOP + 20 * ROW_H + 60
    hx = w // 2 - 20  # header's left column x
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="20" y="28" font-size="18">heartsong wiring: Raspberry Pi 40-pin header '
        "(physical pins; GPIO = BCM)</text>",
        f'<rect x="{hx - 10}" y="{TOP - 14}" width="60" height="{20 * ROW_H + 8}" '
        'fill="#1b5e20" rx="4"/>',
    ]
    for pin in range(1, 41):
        row, right = (pin - 1) // 2, pin % 2 == 0
        x = hx + (28 if right else 12)
        y = TOP + row * ROW_H
        label, colour, part = CONNECTIONS.get(pin, ("", "#999999", ""))
        fill = colour if part else "#cccccc"
        out.append(f'<circle cx="{x}" cy="{y - 4}" r="6" fill="{fill}"/>')
        out.append(f'<text x="{x - 4}" y="{y - 14 if row == 0 else y + 14}" font-size="8" '
                   f'visibility="{"visible" if row == 0 else "hidden"}">{pin}</text>')
        if not part:
            continue
        text = escape(f"{pin} {label} - {part}")
        if right:
            out.append(f'<line x1="{x + 6}" y1="{y - 4}" x2="{x + 60}" y2="{y - 4}" '
                       f'stroke="{colour}" stroke-width="2"/>')
            out.append(f'<text x="{x + 66}" y="{y}">{text}</text>')
        else:
            out.append(f'<line x1="{x - 60}" y1="{y - 4}" x2="{x - 6}" y2="{y - 4}" '
                       f'stroke="{colour}" stroke-width="2"/>')
            out.append(f'<text x="{x - 66}" y="{y}" text-anchor="end">{text}</text>')
    out.append(f'<text x="20" y="{h - 20}">Not to be used for anything else: GPIO 0/1 (HAT '
               "EEPROM), 2/3 (I2C), 18-21 (I2S). Speaker 4-8 Ohm on the MAX98357A terminal."
               "</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    """Write the diagram to ``argv[0]`` (default hw/wiring.svg next to this repo's tools)."""
    out = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "hw" / "wiring.svg"
    out.write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
