#!/usr/bin/env python3
"""Draw the HTTP/1.1 load rig's history: CPU µs per request and p99 latency per peer, one point per
results file (perf-results/*load-h1*.md, oldest first), into an SVG. No third-party packages: the
SVG is written by hand so the plot can be redrawn anywhere python3 runs.

usage: python3 bench/load/plot_history.py [--results perf-results] [--out perf-results/history.svg]

Each file's date comes from its "- date (UTC):" line, its label from the file name
(DATE-load-h1-<commit>[-variant]); -quick smoke runs and rows not marked valid are skipped. Peers
are compared within one file (same run); across files the machine's load differs, so read the
lines' relative positions at each point rather than their absolute drift.
"""
import argparse
import glob
import html
import math
import os
import re
import sys

COLORS = {
    "nginx": "#2e7d32",
    "haproxy": "#1565c0",
    "yarp": "#8e24aa",
    "proxycore": "#e65100",
    "proxycore-policies": "#c62828",
}
FALLBACK = ["#00838f", "#6d4c41", "#546e7a", "#f9a825"]


def parse(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^- date \(UTC\):\s*(.+)$", text, re.M)
    date = m.group(1).strip() if m else os.path.basename(path)[:10]
    stem = os.path.basename(path)[:-3]
    label = re.sub(r"^\d{4}-(\d{2}-\d{2})-load-h1-", r"\1 ", stem)
    header = None
    rows = {}
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None if not line.strip() else header
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "peer":
            header = cells
            continue
        if header is None or set(cells[0]) <= set("-: "):
            continue
        row = dict(zip(header, cells))
        if row.get("valid", "yes") != "yes":
            continue
        try:
            rows[row["peer"]] = (float(row["CPU µs/req"]), float(row["p99 ms"]))
        except (KeyError, ValueError):
            continue
    return date, label, rows


def nice_log_ticks(lo, hi):
    ticks = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def panel(out, x0, y0, w, h, points, peers, idx, title, unit, colors):
    values = [p[2][peer][idx] for p in points for peer in peers if peer in p[2]]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    if max(values) < hi / 2:
        hi /= 2
    ly0, ly1 = math.log10(lo), math.log10(hi)
    n = len(points)

    def X(i):
        return x0 + (w * (i + 0.5) / n)

    def Y(v):
        return y0 + h - h * (math.log10(v) - ly0) / (ly1 - ly0)

    out.append(f'<text x="{x0}" y="{y0 - 10}" font-size="14" font-weight="bold">{html.escape(title)}</text>')
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>')
    for t in nice_log_ticks(lo, hi):
        y = Y(t)
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + w}" y2="{y:.1f}" stroke="#e0e0e0"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{t:g}</text>')
    out.append(f'<text x="{x0 - 44}" y="{y0 + h / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 {x0 - 44} {y0 + h / 2})">{html.escape(unit)} (log)</text>')
    for i, p in enumerate(points):
        out.append(f'<line x1="{X(i):.1f}" y1="{y0 + h}" x2="{X(i):.1f}" y2="{y0 + h + 4}" stroke="#999"/>')
        out.append(f'<text x="{X(i):.1f}" y="{y0 + h + 16}" font-size="10" text-anchor="end" '
                   f'transform="rotate(-30 {X(i):.1f} {y0 + h + 16})">{html.escape(p[1])}</text>')
    for peer in peers:
        seg = [(X(i), Y(p[2][peer][idx]), p[2][peer][idx]) for i, p in enumerate(points) if peer in p[2]]
        if len(seg) > 1:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in seg)
            out.append(f'<polyline points="{d}" fill="none" stroke="{colors[peer]}" stroke-width="2"/>')
        for x, y, v in seg:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colors[peer]}">'
                       f'<title>{html.escape(peer)}: {v:g} {html.escape(unit)}</title></circle>')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="perf-results")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    out_path = a.out or os.path.join(a.results, "history.svg")
    files = [f for f in glob.glob(os.path.join(a.results, "*load-h1*.md")) if not f.endswith("-quick.md")]
    points = [p for p in (parse(f) for f in files) if p[2]]
    if not points:
        print(f"no valid rows in {a.results}/*load-h1*.md", file=sys.stderr)
        return 1
    points.sort(key=lambda p: (p[0], p[1]))
    peers = []
    for p in points:
        for peer in p[2]:
            if peer not in peers:
                peers.append(peer)
    colors = dict(COLORS)
    for i, peer in enumerate(x for x in peers if x not in colors):
        colors[peer] = FALLBACK[i % len(FALLBACK)]

    W, H = 900, 770
    x0, w, h = 80, 640, 240
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{x0}" y="24" font-size="16" font-weight="bold">HTTP/1.1 load rig history '
           f'(bench/load/run.sh, wrk -c64, proxy on one core)</text>']
    panel(out, x0, 60, w, h, points, peers, 0, "CPU µs per proxied request (lower is better)", "CPU µs/req", colors)
    panel(out, x0, 60 + h + 110, w, h, points, peers, 1, "p99 latency (lower is better)", "p99 ms", colors)
    for i, peer in enumerate(peers):
        y = 80 + i * 22
        out.append(f'<line x1="{x0 + w + 20}" y1="{y}" x2="{x0 + w + 44}" y2="{y}" stroke="{colors[peer]}" stroke-width="3"/>')
        out.append(f'<text x="{x0 + w + 50}" y="{y + 4}" font-size="12">{html.escape(peer)}</text>')
    out.append(f'<text x="{x0}" y="{H - 8}" font-size="10" fill="#666">Each point is one results file; compare peers '
               f'within a point (same run), not a peer across points (machine load differs).</text>')
    out.append("</svg>")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {out_path}: {len(points)} runs, peers {', '.join(peers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
