"""How cost grows: training time against customers, serving latency against catalog size,
from the JSON the other benchmarks wrote; prints the tables and draws benchmarks/growth.png.

    python benchmarks/bench_serving.py --json serving.json
    python benchmarks/bench_training.py --json training.json
    python benchmarks/growth.py serving.json training.json [--png benchmarks/growth.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("serving", type=Path)
    parser.add_argument("training", type=Path)
    parser.add_argument("--png", type=Path, default=Path(__file__).with_name("growth.png"))
    args = parser.parse_args()
    serving = json.loads(args.serving.read_text())
    training = json.loads(args.training.read_text())["train"]

    by_catalog = sorted((r for r in serving if r["customers"] == max(
        s["customers"] for s in serving)), key=lambda r: r["products"])
    print("serving p99 (ms) against catalog size")
    moments = list(by_catalog[0]["moments"])
    print(f"{'businesses':>10} " + " ".join(f"{m:>12}" for m in moments) + f" {'RSS MiB':>8}")
    for r in by_catalog:
        print(f"{r['products']:>10,} " + " ".join(f"{r['moments'][m]['p99_ms']:>12.2f}"
                                                  for m in moments)
              + f" {r['rss_peak_mib']:>8.1f}")
    steps = sorted({k for r in training for k in r} - {"customers", "products", "events",
                                                       "total_s"})
    print("\ntraining time (s) against customers")
    print(f"{'customers':>10} {'total':>8} " + " ".join(f"{s:>16}" for s in steps)
          + "  dominant step")
    for r in training:
        dominant = max(steps, key=lambda s: r.get(s, 0))
        print(f"{r['customers']:>10,} {r['total_s']:>8.1f} " + " ".join(
            f"{r.get(s, 0):>16.2f}" for s in steps) + f"  {dominant}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for m in moments:
        left.plot([r["products"] for r in by_catalog],
                  [r["moments"][m]["p99_ms"] for r in by_catalog], marker="o", label=m)
    left.set_xscale("log")
    left.set_xlabel("businesses in the catalog")
    left.set_ylabel("p99 ms per recommendation")
    left.set_title(f"serving, {by_catalog[0]['customers']:,} customers")
    left.legend()
    left.grid(alpha=0.3)
    xs = [r["customers"] for r in training]
    right.plot(xs, [r["total_s"] for r in training], marker="o", label="total", color="k")
    for s in steps:
        right.plot(xs, [r.get(s, 0) for r in training], marker=".", label=s)
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("customers")
    right.set_ylabel("seconds")
    right.set_title(f"training, {training[0]['products']:,} businesses")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.png, dpi=90)
    print(f"\nwrote {args.png}")


if __name__ == "__main__":
    main()
