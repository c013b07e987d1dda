"""A training log (JSON lines with "step" and "loss") drawn as a small standalone SVG: the raw loss per
step (light) and its running mean over 1% of the steps (dark), on a linear loss axis."""

import json
import math
from html import escape

W, H = 640, 360
LEFT, RIGHT, TOP, BOTTOM = 60, 20, 40, 45


def _nice_ticks(lo, hi, count=5):
    span = hi - lo or 1.0
    raw = span / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = (lo // step) * step
    ticks = []
    v = first
    while v <= hi + 1e-12:
        if v >= lo - 1e-12:
            ticks.append(round(v, 10))
        v += step
    return ticks


def write_loss_svg(log_path, svg_path, title):
    entries = [json.loads(ln) for ln in open(log_path, encoding="utf-8") if ln.strip()]
    if not entries:
        return
    steps = [e["step"] for e in entries]
    losses = [e["loss"] for e in entries]
    window = max(1, len(losses) // 100)
    smooth = []
    acc = 0.0
    for i, v in enumerate(losses):
        acc += v
        if i >= window:
            acc -= losses[i - window]
        smooth.append(acc / min(i + 1, window))
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = 0.0, max(losses) * 1.05 or 1.0

    def x(s):
        return LEFT + (s - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def y(v):
        return TOP + (1 - (v - y0) / (y1 - y0)) * (H - TOP - BOTTOM)

    def line(values, colour, width):
        pts = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, values))
        return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}" points="{pts}"/>'

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for t in _nice_ticks(y0, y1):
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    for t in _nice_ticks(x0, x1):
        parts.append(f'<text x="{x(t):.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{t:g}</text>')
    parts += [
        f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{H - BOTTOM}" y2="{H - BOTTOM}" stroke="black"/>',
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{H - BOTTOM}" stroke="black"/>',
        f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">step</text>',
        f'<text x="16" y="{H / 2}" text-anchor="middle" transform="rotate(-90 16 {H / 2})">loss (nats/token)</text>',
        line(losses, "#9ecae1", 1),
        line(smooth, "#08519c", 2),
        f'<text x="{W - RIGHT}" y="{TOP - 6}" text-anchor="end" fill="#08519c">'
        f"last {smooth[-1]:.3f} (mean of {window})</text>",
        "</svg>",
    ]
    with open(svg_path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n")
