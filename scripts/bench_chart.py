#!/usr/bin/env python3
"""Draw the JSON written by ``scripts/bench --json FILE`` as a grouped bar chart (default docs/bench.png).

One panel per mode (keep-alive, close); one group per peer (nginx, gunicorn gthread, granian, the CPython
floor) with the peer's median req/s beside ehttpd's, native handler and WSGI, each ehttpd bar labelled with
its ratio to the peer.
matplotlib is needed for the chart only; it is pip-installed when missing.

    scripts/bench_chart.py bench.json [--out docs/bench.png]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = ("keep-alive", "close")
PEERS = {
    "nginx": "nginx",
    "gunicorn": "gunicorn gthread",
    "granian": "granian",
    "cpython-floor": "CPython floor",
}
OURS = {"ehttpd": "ehttpd native", "ehttpd-wsgi": "ehttpd wsgi"}
NOISY_CPU_PCT = 10  # as in scripts/bench
COLORS = {"peer": "#9e9e9e", "ehttpd": "#1f77b4", "ehttpd-wsgi": "#ff7f0e"}


def load_pyplot():
    if importlib.util.find_spec("matplotlib") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "matplotlib"], check=True, timeout=600)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def medians(results: dict) -> dict[tuple[str, str], float]:
    return {(row["server"], row["mode"]): row["rps"] for row in results["summary"] if row.get("rps")}


def draw_panel(ax, rps: dict[tuple[str, str], float], mode: str) -> None:
    """One group per peer that ran: the peer's bar, then ehttpd's that ran, labelled with their ratios."""
    peers = [peer for peer in PEERS if (peer, mode) in rps]
    ours = [name for name in OURS if (name, mode) in rps]
    width = 0.8 / (1 + len(ours))
    for i, peer in enumerate(peers):
        theirs = rps[peer, mode]
        bars = [("peer", theirs, COLORS["peer"], "")]
        bars += [
            (
                OURS[name],
                rps[name, mode],
                COLORS[name],
                f"{rps[name, mode] / theirs:.2f}\N{MULTIPLICATION SIGN}",
            )
            for name in ours
        ]
        for j, (label, value, color, ratio) in enumerate(bars):
            x = i + (j - (len(bars) - 1) / 2) * width
            ax.bar(x, value, width * 0.95, color=color, label=label)
            text = f"{value / 1000:.1f}k" + (f"\n{ratio}" if ratio else "")
            ax.annotate(
                text,
                (x, value),
                ha="center",
                va="bottom",
                fontsize=7,
                xytext=(0, 2),
                textcoords="offset points",
            )
    ax.set_xticks(range(len(peers)), [f"vs {PEERS[peer]}" for peer in peers])
    ax.set_title(mode)
    ax.set_ylabel("requests/s (median)")
    ax.margins(y=0.2)
    ax.grid(axis="y", alpha=0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, help="results written by scripts/bench --json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench.png", help="(default %(default)s)")
    args = parser.parse_args(argv)
    results = json.loads(args.json.read_text())
    rps = medians(results)
    modes = [mode for mode in MODES if any(m == mode for _, m in rps)]
    if not modes:
        sys.exit(f"{args.json}: no run with a result")
    plt = load_pyplot()
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.5), squeeze=False)
    for ax, mode in zip(axes[0], modes, strict=True):
        draw_panel(ax, rps, mode)
    handles = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    meta = results["meta"]
    title = (
        f"Hello world, wrk -c{meta['connections']} -d{meta['duration']}s,"
        f" median of {meta['rounds']} round(s), {meta['workers']} processes per server,"
        f" {meta['cpus']} CPUs ({meta['date']})"
    )
    other = max((run.get("other_cpu_pct", 0) for run in results["runs"]), default=0)
    if other > NOISY_CPU_PCT:
        title += f"\nnoisy: other processes used up to {other:.0f}% of the CPUs during a run"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
