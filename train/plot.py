"""Draws a loss-per-step log (JSONL lines with "step" and "loss") as an SVG line plot (standard library)."""

import json
import math


def write_loss_svg(log_path, svg_path, title="training loss", smooth=25):
    with open(log_path) as f:
        points = [(r["step"], r["loss"]) for r in map(json.loads, f) if math.isfinite(r["loss"])]
    if not points:
        return
    w, h, pad = 720, 360, 50
    steps = [p[0] for p in points]
    # a running mean over `smooth` steps, drawn over the raw values
    means = []
    acc = 0.0
    for i, (_, loss) in enumerate(points):
        acc += loss
        if i >= smooth:
            acc -= points[i - smooth][1]
        means.append(acc / min(i + 1, smooth))
    lo, hi = min(p[1] for p in points), max(p[1] for p in points)
    hi = hi if hi > lo else lo + 1
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)

    def xy(step, loss):
        x = pad + (step - x0) / (x1 - x0) * (w - 2 * pad)
        y = h - pad - (loss - lo) / (hi - lo) * (h - 2 * pad)
        return f"{x:.1f},{y:.1f}"

    raw = " ".join(xy(s, v) for s, v in points)
    mean = " ".join(xy(s, v) for s, v in zip(steps, means))
    ticks = "".join(
        f'<text x="{pad - 6}" y="{h - pad - i / 4 * (h - 2 * pad) + 4:.1f}" text-anchor="end">{lo + i / 4 * (hi - lo):.2f}</text>'
        for i in range(5)
    )
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{w / 2}" y="20" text-anchor="middle" font-size="14">{title} (last {points[-1][1]:.4f} at step {steps[-1]})</text>
<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>
{ticks}
<text x="{pad}" y="{h - pad + 16}">{x0}</text><text x="{w - pad}" y="{h - pad + 16}" text-anchor="end">{x1}</text>
<text x="{w / 2}" y="{h - 12}" text-anchor="middle">step</text>
<polyline points="{raw}" fill="none" stroke="#9ecae1" stroke-width="1"/>
<polyline points="{mean}" fill="none" stroke="#08519c" stroke-width="2"/>
</svg>
"""
    with open(svg_path, "w") as f:
        f.write(svg)
