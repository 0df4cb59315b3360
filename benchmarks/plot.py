"""The latency distributions as an SVG next to the table in docs/performance.md (no plotting library).

One row per tool and request: a whisker from the 1st to the 99th percentile, a box from the 25th to
the 75th, a mark at the median, on a logarithmic axis in milliseconds.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Sequence, Tuple
from xml.sax.saxutils import escape

PERCENTILES = (1, 25, 50, 75, 99)
LABEL_WIDTH = 350
PLOT_WIDTH = 520
ROW = 18
COLOURS = {"ours-natpmp": "#1f77b4", "ours-pcp": "#17becf", "pypi": "#ff7f0e", "natpmpc": "#2ca02c",
           "ours-cli": "#7f7f7f"}


def percentiles(times: Sequence[float]) -> Dict[str, float]:
    """Nearest-rank percentiles of the times (seconds), keyed p1 ... p99."""
    ordered = sorted(times)
    last = len(ordered) - 1
    return {f"p{p}": ordered[min(last, int(round(p / 100 * last)))] for p in PERCENTILES}


def svg(sections: Sequence[Tuple[str, Dict[str, Dict[str, Any]]]], tools: Sequence[str],
        labels: Dict[str, str]) -> str:
    """sections: (title, {"tool/op": row with p1..p99 in seconds}) in the order they are drawn."""
    values = [row[f"p{p}"] for _title, table in sections for row in table.values()
              if "p1" in row for p in PERCENTILES]
    low = 10 ** math.floor(math.log10(min(values) * 1000)) if values else 0.01
    high = 10 ** math.ceil(math.log10(max(values) * 1000)) if values else 1000.0

    def x(seconds: float) -> float:
        span = math.log10(high) - math.log10(low)
        return LABEL_WIDTH + PLOT_WIDTH * (math.log10(max(seconds * 1000, low)) - math.log10(low)) / span

    body: List[str] = []
    y = 10
    for title, table in sections:
        y += ROW
        body.append(f'<text x="4" y="{y}" font-weight="bold">{escape(title)}</text>')
        for op in ("map", "public"):
            for tool in tools:
                row = table.get(f"{tool}/{op}")
                if row is None or "p1" not in row:
                    continue
                y += ROW
                mid = y - 4
                colour = COLOURS.get(tool, "#000000")
                body.append(f'<text x="14" y="{y}">{escape(labels[tool])}, {op}</text>')
                body.append(f'<line x1="{x(row["p1"]):.1f}" y1="{mid}" x2="{x(row["p99"]):.1f}" y2="{mid}" '
                            f'stroke="{colour}"/>')
                body.append(f'<rect x="{x(row["p25"]):.1f}" y="{mid - 5}" '
                            f'width="{max(x(row["p75"]) - x(row["p25"]), 1):.1f}" height="10" '
                            f'fill="{colour}" fill-opacity="0.35" stroke="{colour}"/>')
                body.append(f'<line x1="{x(row["p50"]):.1f}" y1="{mid - 7}" x2="{x(row["p50"]):.1f}" '
                            f'y2="{mid + 7}" stroke="{colour}" stroke-width="2"/>')
    axis_y = y + 12
    decade = low
    ticks: List[str] = []
    while decade <= high * 1.0001:
        tick_x = x(decade / 1000)
        ticks.append(f'<line x1="{tick_x:.1f}" y1="20" x2="{tick_x:.1f}" y2="{axis_y}" stroke="#dddddd"/>')
        ticks.append(f'<text x="{tick_x:.1f}" y="{axis_y + 14}" text-anchor="middle">{decade:g}</text>')
        decade *= 10
    height = axis_y + 40
    width = LABEL_WIDTH + PLOT_WIDTH + 30
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        *ticks,
        *body,
        f'<text x="{LABEL_WIDTH + PLOT_WIDTH / 2:.0f}" y="{axis_y + 32}" text-anchor="middle">'
        "milliseconds per request (log scale): whisker p1-p99, box p25-p75, bar median</text>",
        "</svg>",
    ]) + "\n"
