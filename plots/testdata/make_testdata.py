#!/usr/bin/python3
"""Writes the test inputs of //plots:figures_test into plots/testdata/ (run it from the workspace root
when the input shapes change; the test reads the files, it does not run this):

  throughput-sweep.json  synthetic ulsnet.throughput.v2 with the newer fields: capacity per payload
                         size, the offered-load sweep (load_fraction), competitors, CI95s and the
                         proxy CPU split by class; with a few gaps each figure has to note
  jitter-host.json       synthetic //bench:jitter (ulsnet.jitter.v1): thread and sandbox, 0/1/2/4
                         competitors, ci95 on every run, one of them undefined (one repetition)
  throughput-old.json    bench/reference/throughput-protection.json trimmed (no search steps, no
                         per-repetition samples or drop counters, no calibration): an older file
                         with none of the newer fields

The numbers are invented (deterministic), shaped like the harness's output; they measure nothing.
"""

import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [64, 256, 512, 1024, 1472]
FRACTIONS = [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.25, 1.5]
SCHEME = ("log-linear: one bucket per value below 64, then 64 equal buckets per power of two; "
          "[lower, n], a bucket ending where the next possible one starts")


def environment(hosts):
    return {"cpu_model": "Test CPU 9000", "cores": 2, "kernel": "Linux 6.1.0-test", "hosts": hosts,
            "commit": "fedcba9876543210fedcba9876543210fedcba98", "describe": "fedcba987654", "dirty": False,
            "date": "2026-01-02T00:00:00Z", "machine": "x86_64", "virtualized": True}


def bucket_lower(v):
    v = int(v)
    if v < 64:
        return v
    width = (1 << (v.bit_length() - 1)) >> 6
    return v - v % width


def histogram(rng, median_ns, spread, n=400):
    """A log-normal sample of n delays in the harness's log-linear buckets."""
    counts = {}
    for _ in range(n):
        v = int(median_ns * rng.lognormvariate(0.0, spread))
        counts[bucket_lower(v)] = counts.get(bucket_lower(v), 0) + 1
    return {"below_zero": 0, "buckets": [[k, counts[k]] for k in sorted(counts)], "count": n, "scheme": SCHEME,
            "unit": "ns"}


def ci(mean, half, n=3):
    return {"mean": round(mean, 1), "lo": round(mean - half, 1), "hi": round(mean + half, 1), "n": n,
            "defined": True}


def bracket(lower, upper, status="measured", loss=0.005):
    return {"lower_pps": lower, "upper_pps": upper, "censored": status == "censored", "status": status,
            "loss_criterion": loss, "final_duration_s": 1.0}


JOBS = [  # method, variant, mode, protection, PDR at 64 B, per-packet proxy cost (ns)
    ("kernel-socket", "batched", "relay", "n/a", 200000.0, 4200.0),
    ("sandbox", "af_xdp", "relay", "mprotect", 420000.0, 2100.0),
    ("user-thread", "af_xdp", "relay", "n/a", 330000.0, 2600.0),
]


def job(m, v, mode, p):
    return {"method": m, "variant": v, "mode": mode, "protection": p}


def throughput_sweep():
    rng = random.Random(11)
    capacity, results = [], []
    for m, v, mode, p, pdr64, _ in JOBS + [("raw-socket", "af_packet", "relay", "n/a", 150000.0, 0)]:
        for size in SIZES:
            pdr = round(pdr64 / (1 + size / 900.0))
            e = dict(job(m, v, mode, p), payload_bytes=size, search_ceiling_final_pps=pdr * 1.6,
                     ndr=bracket(pdr * 0.8, pdr * 0.82, loss=0.0), pdr=bracket(pdr, pdr * 1.02))
            if m == "sandbox" and size == 64:
                e["pdr"] = bracket(pdr, None, status="censored")
            if m == "user-thread" and size == 512:
                e["pdr"] = dict(bracket(pdr, pdr * 0.97, status="inconsistent"),
                                note="a 0.25 s trial failed below the bracket's lower bound")
            if m == "raw-socket" and size == 1472:
                e = dict(job(m, v, mode, p), payload_bytes=size, error="proxy exited with status 1 before it was ready")
            capacity.append(e)
    common = 100000.0
    for m, v, mode, p, pdr64, cost in JOBS:
        reps = 1 if m == "user-thread" else 3
        base = dict(job(m, v, mode, p), repetitions=reps, labels={"hosts": "netns", "generator": "af_xdp"})

        def point(load, offered, delivered, lat_ns, **extra):
            r = dict(base, payload_bytes=64, load=load, offered_pps=offered, delivered_pps=delivered,
                     delivered_pps_min=delivered * 0.97, delivered_pps_max=min(offered, delivered * 1.02),
                     latency_ns={"p50": lat_ns, "p99": lat_ns * 3, "histogram": histogram(rng, lat_ns, 0.5)},
                     ipdv_ns={"p50": 600.0, "p99": lat_ns * 0.4},
                     cpu={"proxy_host_ns_per_forwarded": cost, "proxy_process_ns_per_forwarded": cost * 0.6})
            if reps > 1:
                r["delivered_pps_ci95"] = ci(delivered, delivered * 0.02)
                r["latency_p99_ns_ci95"] = ci(lat_ns * 3, lat_ns * 0.3)
            r.update(extra)
            return r

        for f in FRACTIONS:
            offered = pdr64 * f
            # Past the PDR the kernel socket livelocks: delivered falls as offered grows.
            delivered = offered if f <= 1.0 else (pdr64 * (2.0 - f) if m == "kernel-socket" else pdr64 * 1.01)
            r = point(round(offered), offered, delivered, 30000.0 * (1 + 4 * f * f), load_fraction=f,
                      load_basis="a fraction of this job's PDR lower bound at 64 B")
            if m == "sandbox" and f == 0.9:
                del r["latency_ns"]["histogram"]
            results.append(r)
        results.append(point("max", pdr64 * 1.9, pdr64 * (0.4 if m == "kernel-socket" else 1.0), 900000.0))
        results.append(dict(point("max", 120000.0, 118000.0, 200000.0), payload_bytes=1472))
        # The common load, then the same load with CPU-bound competitors on the proxy's CPU.
        split = {"user": cost * 0.15, "system": cost * 0.55, "softirq": cost * 0.28, "irq": cost * 0.02}
        r = point(common, common, common, 45000.0, load_basis="half of kernel-socket:batched relay's PDR")
        if m != "user-thread":
            r["cpu"]["proxy_cpu_split_ns_per_forwarded"] = split
        results.append(r)
        if m == "user-thread":
            continue
        for c in (1, 2, 4):
            r = point(common, common, common * (1 - 0.02 * c), 45000.0 * (1 + c * (3 if m == "kernel-socket" else 1)),
                      competitors=c, load_basis="half of kernel-socket:batched relay's PDR")
            r["cpu"]["proxy_cpu_split_ns_per_forwarded"] = split
            if m == "sandbox" and c == 4:  # Student t on 3 repetitions can reach below 0
                r["latency_p99_ns_ci95"] = {"mean": 200000.0, "lo": -50000.0, "hi": 450000.0}
            results.append(r)
    return {"schema": "ulsnet.throughput.v2", "environment": environment("netns"), "common_load_pps": common,
            "common_load_basis": "half of kernel-socket:batched relay's PDR lower bound",
            "config": {"sizes": SIZES, "reps": 3, "pdr_loss": 0.005}, "capacity": capacity, "results": results}


def jitter_host():
    runs = []
    for service, prot, base in (("thread", "n/a", 60.0), ("sandbox", "mprotect", 25.0), ("sandbox", "none", 22.0)):
        for hogs in (0, 1, 2, 4):
            sd = base * (1 + 0.8 * hogs) if service == "thread" else base * (1 + 0.1 * hogs)
            p99 = 4 * sd + 50
            r = {"path": "%s on the host" % service, "service": service, "hogs": hogs, "protection": prot,
                 "samples": 2000,
                 "delay_us": {"mean": 50.0 + sd, "stddev": sd, "p50": 50.0 + sd / 2, "p99": p99, "max": p99 * 5},
                 "interval_us": {"mean": 1000.0, "stddev": sd * 1.4, "p50": 1000.0, "p99": 1000.0 + p99, "max": 3000.0},
                 "ci95": {"delay_p99_us": ci(p99, p99 * 0.1), "delay_stddev_us": ci(sd, sd * 0.15),
                          "delay_p50_us": ci(50.0 + sd / 2, 3.0)}}
            if service == "sandbox" and prot == "none" and hogs == 4:
                # One repetition: //bench:jitter writes the CI undefined, lo = hi = mean.
                r["ci95"] = {k: {"mean": v["mean"], "lo": v["mean"], "hi": v["mean"], "n": 1, "defined": False}
                             for k, v in r["ci95"].items()}
            runs.append(r)
    return {"experiment": "jitter", "schema": "ulsnet.jitter.v1", "environment": environment("host"),
            "config": {"period_us": 1000, "hogs": [0, 1, 2, 4], "reps": 5}, "runs": runs}


def throughput_old(root):
    with open(os.path.join(root, "bench", "reference", "throughput-protection.json")) as f:
        doc = json.load(f)
    doc.pop("calibration", None)
    for e in doc.get("capacity", []):
        e.pop("steps", None)
    for r in doc.get("results", []):
        r.pop("samples", None)
        r.pop("drops", None)
    return doc


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.getcwd()
    for name, doc in (("throughput-sweep.json", throughput_sweep()), ("jitter-host.json", jitter_host()),
                      ("throughput-old.json", throughput_old(root))):
        with open(os.path.join(HERE, name), "w") as f:
            json.dump(doc, f, sort_keys=True, separators=(",", ":"))
            f.write("\n")
        print(os.path.join(HERE, name))


if __name__ == "__main__":
    main()
