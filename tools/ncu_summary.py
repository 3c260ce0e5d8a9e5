"""Summarizes an Nsight Compute CSV (ncu --csv --section SpeedOfLight) by kernel name: launches,
total and mean duration, and the mean share of peak DRAM and SM throughput, slowest first.
Used by tools/gpu_check.sh --profile; reads the CSV from stdin, prints a table.
"""
import csv
import sys
from collections import defaultdict


def number(s):
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


rows = [r for r in csv.DictReader(l for l in sys.stdin if l.startswith('"'))]
by = defaultdict(lambda: {"n": 0, "us": 0.0, "dram": 0.0, "sm": 0.0})
launch_metric = {}
for r in rows:
    key = (r.get("ID"), r.get("Kernel Name", "?"))
    launch_metric.setdefault(key, {})[r.get("Metric Name", "")] = (r.get("Metric Unit", ""), r.get("Metric Value", ""))
for (_, name), m in launch_metric.items():
    unit, dur = m.get("Duration", ("", ""))
    d = number(dur)
    if d is None:
        continue
    us = d / 1e3 if unit == "nsecond" else d * 1e3 if unit == "msecond" else d
    k = by[name.split("(")[0][:60]]
    k["n"] += 1
    k["us"] += us
    k["dram"] += number(m.get("DRAM Throughput", ("", "0"))[1]) or 0.0
    k["sm"] += number(m.get("Compute (SM) Throughput", ("", "0"))[1]) or 0.0
total = sum(k["us"] for k in by.values()) or 1.0
print(f"{'kernel':60} {'n':>5} {'total us':>10} {'share':>6} {'mean us':>9} {'DRAM %':>7} {'SM %':>6}")
for name, k in sorted(by.items(), key=lambda kv: -kv[1]["us"])[:30]:
    n = k["n"]
    print(f"{name:60} {n:5d} {k['us']:10.1f} {100 * k['us'] / total:5.1f}% {k['us'] / n:9.1f} {k['dram'] / n:7.1f} {k['sm'] / n:6.1f}")
