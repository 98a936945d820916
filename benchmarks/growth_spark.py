"""Training as the operator grows: ``recommender train`` on this machine against
``recommender train --engine spark`` on Spark's ``local[2]``, at 1M, 3M and 10M customers.

Each operator is generated once (``benchmarks/operator_parquet.py``: the same rows in Parquet
files and in the workspace's store) and trained twice from a cold process, the Spark run with
its driver (which is also its executor in local mode) given ``--driver-memory``. Both train
the same strategies (the built-in ones with Spark fits, and those that learn nothing from
customers; propensity is left out of the benchmark workspace). Peak memory is the resident
memory of the whole process tree (the Python process and the JVM), sampled every half second.
Both versions are then compared: identical association rules and popularity tables.

    python benchmarks/growth_spark.py --customers 1000000,3000000,10000000 --json growth.json
    python benchmarks/growth_spark.py --customers 10000000 --json g10m.json   # one size
    python benchmarks/growth_spark.py --from-json g1m.json g3m.json g10m.json  # together
    python benchmarks/growth_spark.py --quick

Prints the table and the crossover (the size from which Spark trains faster here, or where
the measured growth rates say it would), and draws benchmarks/growth_spark.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from operator_parquet import generate  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int) -> int:
    """Resident bytes of process ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            rss[int(entry.name)] = int(fields[21]) * PAGE
            children.setdefault(int(fields[1]), []).append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def timed(command: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Run ``command``; its wall time, peak tree RSS and the JSON it printed last."""
    peak = 0
    with log.open("w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=env,
                                   text=True)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.5):
                peak = max(peak, tree_rss(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, _ = process.communicate()
        done.set()
        sampler.join()
        wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed; see {log}")
    return {"wall_s": wall, "peak_mib": peak / 2**20, **json.loads(out.strip().splitlines()[-1])}


def train(root: Path, engine: str, master: str, driver_memory: str, log: Path
          ) -> dict[str, Any]:
    """One cold ``recommender train`` of the workspace ``root``; its timings."""
    command = [sys.executable, "-m", "recommender.cli", "train", "--dir", str(root)]
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_SUBMIT_ARGS"}
    if engine == "spark":
        command += ["--engine", "spark", "--master", master, "--input", str(root / "tables")]
        env["PYSPARK_SUBMIT_ARGS"] = f"--driver-memory {driver_memory} pyspark-shell"
    run = timed(command, env, log)
    manifest = json.loads((Path(run["model_dir"]) / "manifest.json").read_text())
    fits = {name: entry["fit_seconds"] for name, entry in manifest["strategies"].items()}
    return {"engine": engine, "total_s": round(run["wall_s"], 1),
            "peak_mib": round(run["peak_mib"]), "fits": fits,
            "other_s": round(run["wall_s"] - sum(fits.values()), 1),
            "model_dir": run["model_dir"], "events": manifest["data"]["events"]}


def read_store(root: Path) -> dict[str, float]:
    """``TrainingData.from_store`` of the workspace, timed in this (fresh) process."""
    from recommender.training import TrainingData
    from recommender.workspace import Workspace

    ws = Workspace(root)
    catalog = ws.catalog()
    with ws.store() as store:
        wall, cpu = time.perf_counter(), time.process_time()
        data = TrainingData.from_store(store, catalog)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"read_s": round(wall, 1), "read_cpu_s": round(cpu, 1),
            "events": len(data.events)}


def same_models(local: str, spark: str) -> bool:
    """Identical rules and popularity tables (to float rounding) in the two versions."""
    for folder, name, exact in (("association", "rules.npz", True),
                                ("popularity", "popularity.npz", False)):
        a, b = np.load(Path(local) / folder / name), np.load(Path(spark) / folder / name)
        for key in a.files:
            same = np.array_equal(a[key], b[key]) if exact else \
                np.allclose(a[key], b[key], rtol=1e-6, atol=0)
            if not same:
                return False
    return True


def crossover(rows: list[dict[str, Any]]) -> str:
    """Where Spark starts to train faster than one machine: measured, or extrapolated."""
    total = {(r["customers"], r["engine"]): r["total_s"] for r in rows}
    sizes = sorted({n for n, _ in total if (n, "local") in total and (n, "spark") in total})
    if not sizes:
        return "one engine only: no crossover to estimate"
    faster = [n for n in sizes if total.get((n, "spark"), np.inf) < total.get((n, "local"), 0)]
    if faster:
        return f"Spark local[2] trains faster from {faster[0]:,} customers (measured)"
    if len(sizes) < 2:
        return "one size only: no crossover to estimate"
    fit = {e: np.polyfit(sizes, [total[(n, e)] for n in sizes], 1) for e in ("local", "spark")}
    (a_local, b_local), (a_spark, b_spark) = fit["local"], fit["spark"]
    if a_spark >= a_local:
        return (f"none on this machine: Spark's time grows {a_spark * 1e6:.1f} s per million "
                f"customers against {a_local * 1e6:.1f} s locally (least squares over "
                f"{len(sizes)} sizes), so it never catches up on these cores")
    at = (b_spark - b_local) / (a_local - a_spark)
    return (f"not reached up to {sizes[-1]:,} customers; the measured growth rates "
            f"({a_local * 1e6:.1f} s per million locally, {a_spark * 1e6:.1f} s on Spark) "
            f"cross near {at / 1e6:.1f}M customers (extrapolated)")


def table(rows: list[dict[str, Any]]) -> None:
    steps = sorted({s for r in rows for s in r["fits"]})
    print(f"{'customers':>11} {'events':>12} {'engine':>6} {'total s':>8} {'peak MiB':>9} "
          + " ".join(f"{s[:13]:>13}" for s in steps) + f" {'other s':>8} {'read s':>7} "
          f"{'same':>5}")
    for r in rows:
        read = f"{r['read_s']:>7.1f}" if "read_s" in r else f"{'':>7}"
        print(f"{r['customers']:>11,} {r['events']:>12,} {r['engine']:>6} {r['total_s']:>8.1f} "
              f"{r['peak_mib']:>9,} " + " ".join(f"{r['fits'].get(s, 0):>13.1f}" for s in steps)
              + f" {r['other_s']:>8.1f} {read} {str(r.get('same', '')):>5}")
    print("other s: start-up, reading the tables and writing the version; read s: the store "
          "read alone (TrainingData.from_store), in a process of its own")


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Time (total and per strategy) and peak memory against customers: local solid, Spark
    dashed, one colour per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    steps = sorted({s for r in rows for s in r["fits"] if max(
        x["fits"].get(s, 0) for x in rows) >= 1})
    colours = dict(zip(steps, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"),
                       strict=False))
    for engine, style in (("local", "-"), ("spark", "--")):
        mine = sorted((r for r in rows if r["engine"] == engine), key=lambda r: r["customers"])
        xs = [r["customers"] for r in mine]
        left.plot(xs, [r["total_s"] for r in mine], style, color="k", marker="o",
                  label=f"total, {engine}")
        right.plot(xs, [r["peak_mib"] for r in mine], style, color="k", marker="o",
                   label=engine)
        for s in steps:
            left.plot(xs, [max(r["fits"].get(s, 0), 0.1) for r in mine], style,
                      color=colours[s], marker=".", label=f"{s}, {engine}")
    for axis, title, unit in ((left, "training time (local solid, Spark local[2] dashed)",
                               "seconds"),
                              (right, "peak memory of the process tree", "MiB")):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("customers")
        axis.set_ylabel(unit)
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, ncol=2 if axis is left else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", default="1000000,3000000,10000000")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/spark-growth"))
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="12g")
    parser.add_argument("--engines", default="local,spark")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--png", type=Path, default=Path(__file__).with_name("growth_spark.png"))
    parser.add_argument("--quick", action="store_true",
                        help="1,000 customers and 60 businesses: checks the run, not the speed.")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="Print the table, crossover and plot of earlier runs' --json files "
                             "(one per size, say) instead of running.")
    parser.add_argument("--read-store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_store:
        print(json.dumps(read_store(args.read_store)))
        return
    if args.from_json:
        # A later file's run of the same size and engine replaces an earlier one's; a pair's
        # model comparison stays with the pair.
        runs = {(r["customers"], r["engine"]): r
                for path in args.from_json for r in json.loads(path.read_text())}
        rows = sorted(runs.values(), key=lambda r: (r["customers"], r["engine"]))
        for row in rows:
            twin = runs.get((row["customers"], "spark" if row["engine"] == "local" else "local"))
            if "same" not in row and twin is not None and "same" in twin:
                row["same"] = twin["same"]
        table(rows)
        print(crossover(rows))
        plot(rows, args.png)
        return
    sizes = [int(n) for n in args.customers.split(",")]
    products, memory = args.products, args.driver_memory
    if args.quick:
        sizes, products, memory = [1000], 60, "1g"
    rows = []
    for customers in sizes:
        root = args.work / f"op-{customers}" if products == 2000 else \
            args.work / f"op-{customers}-{products}"
        counts = generate(root, customers=customers, products=products, store=True,
                          log=lambda m: print(m, file=sys.stderr))
        print(f"{customers:,} customers: {counts}", file=sys.stderr)
        found = {}
        for engine in args.engines.split(","):
            row = train(root, engine, args.master, memory, root / f"train-{engine}.log")
            if engine == "local":  # the store read alone, in a process of its own
                read = timed([sys.executable, __file__, "--read-store", str(root)],
                             dict(os.environ), root / "read-store.log")
                row |= {"read_s": read["read_s"], "read_cpu_s": read["read_cpu_s"]}
            found[engine] = row
            rows.append({"customers": customers, **row})
            print(f"  {engine}: {row['total_s']} s, {row['peak_mib']} MiB", file=sys.stderr)
        if {"local", "spark"} <= found.keys():
            same = same_models(found["local"]["model_dir"], found["spark"]["model_dir"])
            for row in rows[-2:]:
                row["same"] = same
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    table(rows)
    print(crossover(rows))
    if not args.quick:
        plot(rows, args.png)


if __name__ == "__main__":
    main()
