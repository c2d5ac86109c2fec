"""figures.py on a small synthetic result set (hand-written, a few rows of each kind), and its
refusal of input it does not draw; then on plots/testdata/ (written by make_testdata.py): a netns
file with the newer fields (capacity per size, the load sweep, competitors, CIs, the CPU split), a
host jitter file, and a trimmed older netns file. Never reads bench/reference/."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import unittest

try:
    from plots import figures
except ImportError:  # run as `python3 plots/figures_test.py`
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")
NEW_NETNS_FIGURES = ["frame-size", "load-curve", "latency-fractions", "cpu-split", "competition-jitter"]
OLD_NETNS_FIGURES = ["capacity", "overload", "latency-cdf", "cpu"]


def environment(hosts, accel=None, dirty=False):
    env = {"cpu_model": "Test CPU 9000", "cores": 2, "kernel": "Linux 6.1.0-test", "hosts": hosts,
           "commit": "0123456789abcdef0123456789abcdef01234567",
           "describe": "0123456789ab" + ("-dirty" if dirty else ""), "dirty": dirty,
           "date": "2026-01-01T00:00:00Z"}
    if accel:
        env["accel"] = accel
    return env


def histogram(center_ns, n):
    """A few log-linear buckets around center_ns, as the harness writes them."""
    b = []
    width = (1 << (int(center_ns).bit_length() - 1)) >> 6
    base = center_ns - center_ns % width
    for i in range(-4, 5):
        b.append([base + i * width * 4, n - abs(i) * (n // 6)])
    b.append([base * 8, 3])
    return {"below_zero": 0, "buckets": b, "count": sum(c for _, c in b), "unit": "ns"}


def bracket(lower, upper, status="measured", loss=0.0):
    return {"lower_pps": lower, "upper_pps": upper, "censored": status == "censored", "status": status,
            "loss_criterion": loss}


NETNS = {
    "schema": "ulsnet.throughput.v2",
    "environment": environment("netns", dirty=True),
    "common_load_pps": 50000.0,
    "capacity": [
        {"method": "kernel-socket", "variant": "batched", "mode": "relay", "protection": "n/a",
         "payload_bytes": 64, "search_ceiling_final_pps": 300000.0,
         "ndr": bracket(100000.0, 104000.0), "pdr": bracket(120000.0, 123000.0, loss=0.005)},
        {"method": "sandbox", "variant": "af_xdp", "mode": "relay", "protection": "mprotect",
         "payload_bytes": 64, "search_ceiling_final_pps": 260000.0,
         "ndr": bracket(150000.0, 155000.0),
         "pdr": bracket(260000.0, None, status="censored", loss=0.005)},
        {"method": "raw-socket", "variant": "af_packet", "mode": "relay", "protection": "n/a",
         "payload_bytes": 64, "error": "proxy exited with status 1 before it was ready"},
        {"method": "user-thread", "variant": "af_xdp", "mode": "relay", "protection": "n/a",
         "payload_bytes": 64,
         "ndr": bracket(90000.0, 95000.0),
         "pdr": dict(bracket(200000.0, None, status="inconsistent", loss=0.005),
                     note="a 0.25 s trial failed at 199999 pps")},
    ],
    "results": [
        {"method": "kernel-socket", "variant": "batched", "mode": "relay", "protection": "n/a",
         "payload_bytes": 64, "load": "max", "offered_pps": 400000.0, "delivered_pps": 250000.0,
         "delivered_pps_min": 200000.0, "delivered_pps_max": 260000.0},
        {"method": "kernel-socket", "variant": "batched", "mode": "relay", "protection": "n/a",
         "payload_bytes": 1472, "load": "max", "offered_pps": 150000.0, "delivered_pps": 149000.0,
         "delivered_pps_min": 140000.0, "delivered_pps_max": 150000.0},
        {"method": "sandbox", "variant": "af_xdp", "mode": "relay", "protection": "mprotect",
         "payload_bytes": 64, "load": "max", "offered_pps": 700000.0, "delivered_pps": 390000.0,
         "delivered_pps_min": 300000.0, "delivered_pps_max": 470000.0},
        {"method": "sandbox", "variant": "af_xdp", "mode": "relay", "protection": "mprotect",
         "payload_bytes": 1472, "load": "max", "offered_pps": 200000.0, "delivered_pps": 198000.0},
        {"method": "kernel-socket", "variant": "batched", "mode": "relay", "protection": "n/a",
         "payload_bytes": 64, "load": 50000.0, "load_basis": "half of kernel-socket:batched relay's PDR",
         "offered_pps": 50000.0, "delivered_pps": 50000.0, "latency_ns": {"histogram": histogram(120000, 600)},
         "cpu": {"proxy_host_ns_per_forwarded": 3500.0, "proxy_process_ns_per_forwarded": 2600.0}},
        {"method": "sandbox", "variant": "af_xdp", "mode": "relay", "protection": "mprotect",
         "payload_bytes": 64, "load": 50000.0, "load_basis": "half of kernel-socket:batched relay's PDR",
         "offered_pps": 50000.0, "delivered_pps": 50000.0,
         # The older plain-list form of the histogram.
         "latency_ns": {"histogram": histogram(40000, 500)["buckets"]},
         "cpu": {"proxy_host_ns_per_forwarded": 3900.0, "proxy_process_ns_per_forwarded": 2400.0}},
        {"method": "user-thread", "variant": "af_xdp", "mode": "relay", "protection": "n/a",
         "payload_bytes": 64, "load": 50000.0, "load_basis": "half of kernel-socket:batched relay's PDR",
         "offered_pps": 50000.0, "delivered_pps": 49990.0, "latency_ns": {"p50": 130000},
         "cpu": {"proxy_host_ns_per_forwarded": 3600.0}},
    ],
}


def vm_row(method, variant, mode, purpose, offered, fwd, user, kernel, rep=0):
    return {"method": method, "variant": variant, "mode": mode, "purpose": purpose, "rep": rep,
            "offered": "max" if purpose == "rate+latency" else 2000.0, "payload_bytes": 24,
            "offered_pps": offered, "forwarded_pps": fwd, "delivered_pps": fwd * 0.95,
            "proxy_vm_insns_per_forwarded": {"total": user + kernel, "user": user, "kernel": kernel}}


VM = {
    "schema": "ulsnet.throughput-vm.v2",
    "environment": environment("vm", accel="tcg"),
    "results": [
        vm_row("sandbox", "uls", "relay", "rate+latency", 31000.0, 27000.0, 1100.0, 1900.0),
        vm_row("sandbox", "uls", "relay", "rate+latency", 30000.0, 25000.0, 1000.0, 2000.0, rep=1),
        vm_row("sandbox", "uls", "relay", "cost", 2000.0, 2000.0, 1800.0, 50000.0),
        vm_row("kernel-socket", "batched", "relay", "rate+latency", 14000.0, 8500.0, 70.0, 24700.0),
        vm_row("kernel-socket", "batched", "relay", "cost", 2000.0, 2000.0, 1400.0, 19300.0),
        {"method": "raw-socket", "variant": "af_packet", "mode": "relay", "purpose": "cost", "rep": 0,
         "offered": 2000.0, "error": "the proxy's report could not be read"},
    ],
}

VM_JITTER = {
    "experiment": "vm_jitter",
    "environment": environment("vm", accel="kvm"),
    "config": {"period_us": 1000},
    "runs": [
        {"protection": p, "service": s, "hogs": h,
         "delay_us": {"mean": 200.0 + 10 * h, "stddev": sd + 5 * h, "p99": 400.0 + 50 * h, "max": 2000.0}}
        for p in ("kernel", "none") for s, sd in (("uls-upcall", 80.0), ("user-thread", 150.0)) for h in (0, 1, 2)
    ],
}

VM_FORWARD = {
    "experiment": "vm_forward",
    "environment": environment("vm", accel="tcg"),
    "config": {"seconds": 5, "frame_bytes": 64},
    "runs": [
        {"path": path, "offered_pps": rate, "count": rate * 5, "delivered": int(rate * 5 * (1 - loss)),
         "loss_ratio": loss, "complete": not (path == "uls" and rate == 20000),
         "label": "the %s path" % path}
        for path, losses in (("uls", (0.0, 0.04, 0.2)), ("kernel", (0.0, 0.0, 0.04)))
        for rate, loss in zip((1000, 5000, 20000), losses)
    ],
}

MICRO = {
    "context": {"date": "2026-01-01T00:00:00+00:00", "num_cpus": 2, "cpu_model": "Test CPU 9000",
                "kernel": "Linux 6.1.0-test", "describe": "0123456789ab", "dirty": "false"},
    "benchmarks": [
        {"name": n, "run_name": n, "run_type": "iteration", "real_time": t, "time_unit": u}
        for n, ts, u in (("BM_NullSyscall", (105.0, 110.0), "ns"), ("BM_FunctionCall", (1.4, 1.5), "ns"),
                         ("BM_ExtensionInvoke/mprotect", (4.6, 4.7), "us"),
                         ("BM_ProcessPipeRoundTrip/real_time", (5000.0, 9000.0), "ns"))
        for t in ts
    ] + [{"name": "BM_ExtensionInvoke/pkey", "run_name": "BM_ExtensionInvoke/pkey", "run_type": "iteration",
          "error_occurred": True, "error_message": "pkey: no PKU"},
         {"name": "BM_NullSyscall_mean", "run_name": "BM_NullSyscall", "run_type": "aggregate",
          "real_time": 1e9, "time_unit": "ns"}],
}

EXPECTED = ["netns-capacity", "netns-overload", "netns-latency-cdf", "netns-cpu", "vm-insns", "vm-rate",
            "vm_jitter-jitter", "vm_forward-delivery", "micro-invocation"]


def write(path, doc):
    with open(path, "w") as f:
        if isinstance(doc, str):
            f.write(doc)
        else:
            json.dump(doc, f)
    return path


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = figures.main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


class FiguresTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(cls.tmp, "mplconfig"))
        cls.inputs = [write(os.path.join(cls.tmp, name), doc) for name, doc in (
            ("netns.json", NETNS), ("vm.json", VM), ("jitter.json", VM_JITTER), ("forward.json", VM_FORWARD),
            ("micro.json", MICRO))]
        cls.out = os.path.join(cls.tmp, "figs")
        cls.rc, cls.stdout, cls.stderr = run_main(["--out", cls.out] + cls.inputs)
        with open(os.path.join(cls.out, "figures.json")) as f:
            cls.manifest = json.load(f)

    def test_success(self):
        self.assertEqual(self.rc, 0, self.stderr)
        self.assertEqual(self.stderr, "")

    def test_manifest_lists_every_figure(self):
        self.assertEqual([m["figure"] for m in self.manifest], EXPECTED)
        kinds = {m["figure"]: m["kind"] for m in self.manifest}
        self.assertEqual(kinds["netns-cpu"], "netns")
        self.assertEqual(kinds["vm-rate"], "vm")
        self.assertEqual(kinds["vm_jitter-jitter"], "vm_jitter")
        self.assertEqual(kinds["vm_forward-delivery"], "vm_forward")
        for m in self.manifest:
            self.assertEqual(m["files"], [m["figure"] + ".png", m["figure"] + ".pdf"])
            self.assertIn(m["source"], self.inputs)
        # Nothing else was written.
        written = sorted(os.listdir(self.out))
        expected = sorted([n + ext for n in EXPECTED for ext in (".png", ".pdf")] + ["figures.json"])
        self.assertEqual(written, expected)

    def test_files_are_png_and_pdf(self):
        for m in self.manifest:
            png, pdf = (os.path.join(self.out, f) for f in m["files"])
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), PNG_SIGNATURE, png)
            with open(pdf, "rb") as f:
                self.assertEqual(f.read(4), b"%PDF", pdf)
            for path in (png, pdf):
                self.assertGreater(os.path.getsize(path), 5000, path)

    def test_one_line_per_figure(self):
        lines = self.stdout.splitlines()
        for name in EXPECTED:
            self.assertEqual(len([l for l in lines if l.startswith(name + ":")]), 1, name)
        # The netns file has none of the newer fields: those figures are said not to be produced.
        for name in NEW_NETNS_FIGURES:
            said = [l for l in lines if l.startswith("netns-%s:" % name)]
            self.assertEqual(len(said), 1, name)
            self.assertTrue(said[0].startswith("netns-%s: not produced: " % name), said[0])
            self.assertTrue(said[0].endswith("(from %s)" % self.inputs[0]), said[0])

    def test_captions(self):
        by_name = {m["figure"]: m for m in self.manifest}
        netns = by_name["netns-capacity"]["caption"]
        for part in ("Test CPU 9000, 2 cores", "hosts: netns", "Linux 6.1.0-test", "0123456789ab-dirty (dirty)",
                     "source: netns.json"):
            self.assertIn(part, netns)
        vm = by_name["vm-insns"]["caption"]
        self.assertIn("hosts: vm (accel tcg)", vm)
        self.assertNotIn("(dirty)", vm)
        self.assertIn("hosts: vm (accel kvm), ULS kernel VM", by_name["vm_jitter-jitter"]["caption"])

    def test_missing_data_is_noted_not_fatal(self):
        notes = {m["figure"]: " ".join(m["notes"]) for m in self.manifest}
        self.assertIn("raw-socket:af_packet relay: no NDR/PDR", notes["netns-capacity"])
        self.assertIn("inconsistent", notes["netns-capacity"])
        self.assertIn("user-thread:af_xdp relay: not drawn (no latency histogram)", notes["netns-latency-cdf"])
        self.assertIn("proxy_process_ns_per_forwarded", notes["netns-cpu"])
        self.assertIn("raw-socket:af_packet relay (cost, rep 0)", notes["vm-insns"])
        self.assertIn("run incomplete", notes["vm_forward-delivery"])
        self.assertIn("upcall into an extension (pkey): not measured: pkey: no PKU", notes["micro-invocation"])

    def test_micro_caption_from_the_benchmark_context(self):
        cap = {m["figure"]: m for m in self.manifest}["micro-invocation"]["caption"]
        for part in ("Test CPU 9000, 2 cores", "Linux 6.1.0-test", "commit 0123456789ab", "source: micro.json"):
            self.assertIn(part, cap)
        self.assertNotIn("(dirty)", cap)

    def test_bucket_upper_edges(self):
        self.assertEqual(figures.bucket_upper(0), 1)
        self.assertEqual(figures.bucket_upper(63), 64)
        self.assertEqual(figures.bucket_upper(64), 65)
        self.assertEqual(figures.bucket_upper(128), 130)
        self.assertEqual(figures.bucket_upper(29440), 29696)  # from a real file: the next bucket's lower
        xs, ys, total = figures.histogram_cdf({"below_zero": 1, "buckets": [[100, 1], [64, 2]]})
        self.assertEqual(total, 4)
        self.assertEqual(xs, [64, 65, 101])
        self.assertEqual(ys, [0.25, 0.75, 1.0])
        self.assertIsNone(figures.histogram_cdf({"buckets": [[1, "x"]]}))
        self.assertIsNone(figures.histogram_cdf([]))

    def test_two_files_of_one_kind_get_distinct_names(self):
        other = write(os.path.join(self.tmp, "netns-2.json"), dict(NETNS, capacity=[], results=[]))
        out = os.path.join(self.tmp, "two")
        rc, stdout, stderr = run_main(["--out", out, self.inputs[0], other])
        self.assertEqual(rc, 0, stderr)
        with open(os.path.join(out, "figures.json")) as f:
            names = [m["figure"] for m in json.load(f)]
        self.assertEqual(names, ["netns-netns-capacity", "netns-netns-overload", "netns-netns-latency-cdf",
                                 "netns-netns-cpu", "netns-netns-2-capacity", "netns-netns-2-overload",
                                 "netns-netns-2-latency-cdf", "netns-netns-2-cpu"])

    def test_relative_paths_use_build_working_directory(self):
        old = os.environ.get("BUILD_WORKING_DIRECTORY")
        os.environ["BUILD_WORKING_DIRECTORY"] = self.tmp
        try:
            rc, _, stderr = run_main(["--out", "relative-out", "forward.json"])
        finally:
            if old is None:
                del os.environ["BUILD_WORKING_DIRECTORY"]
            else:
                os.environ["BUILD_WORKING_DIRECTORY"] = old
        self.assertEqual(rc, 0, stderr)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "relative-out", "vm_forward-delivery.png")))

    def check_refused(self, name, content, expect):
        path = write(os.path.join(self.tmp, name), content)
        out = os.path.join(self.tmp, "refused-" + name)
        # In a separate process, as a user runs it: exit 2, one message naming the file, no traceback.
        p = subprocess.run([sys.executable, figures.__file__, "--out", out, self.inputs[2], path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(path, p.stderr)
        self.assertIn(expect, p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        self.assertFalse(os.path.exists(out), "nothing is drawn when an input is refused")
        rc, _, err = run_main(["--out", out, path])
        self.assertEqual(rc, 2)
        self.assertIn(path, err)

    def test_malformed_json(self):
        self.check_refused("malformed.json", '{"schema": "ulsnet.throughput.v2", "capacity": [', "malformed JSON")

    def test_unknown_schema(self):
        self.check_refused("unknown.json", {"schema": "ulsnet.throughput.v1", "results": []},
                           "schema 'ulsnet.throughput.v1'")

    def test_malformed_jitter(self):
        self.check_refused("jitter-malformed.json", '{"experiment": "jitter", "schema": "ulsnet.jitter.v1", "runs": [',
                           "malformed JSON")

    def test_unknown_experiment(self):
        self.check_refused("unknown-experiment.json", {"experiment": "host_jitter", "runs": []},
                           "experiment 'host_jitter'")

    def test_not_an_object(self):
        self.check_refused("list.json", [1, 2, 3], "not a result file")

    def test_missing_file(self):
        out = os.path.join(self.tmp, "missing-out")
        rc, _, err = run_main(["--out", out, os.path.join(self.tmp, "does-not-exist.json")])
        self.assertEqual(rc, 2)
        self.assertIn("does-not-exist.json: cannot read", err)



def load_testdata(name):
    with open(os.path.join(TESTDATA, name)) as f:
        return json.load(f)


class NewFieldsTest(unittest.TestCase):
    """plots/testdata/: the newer netns fields, the host jitter kind, an older netns file."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(cls.tmp, "mplconfig"))
        cls.inputs = [os.path.join(TESTDATA, n) for n in ("throughput-sweep.json", "jitter-host.json",
                                                          "throughput-old.json")]
        cls.out = os.path.join(cls.tmp, "figs")
        cls.rc, cls.stdout, cls.stderr = run_main(["--out", cls.out] + cls.inputs)
        with open(os.path.join(cls.out, "figures.json")) as f:
            cls.manifest = json.load(f)
        cls.by_name = {m["figure"]: m for m in cls.manifest}

    def test_success(self):
        self.assertEqual(self.rc, 0, self.stderr)
        self.assertEqual(self.stderr, "")

    def test_manifest(self):
        expected = (["netns-throughput-sweep-" + n for n in OLD_NETNS_FIGURES + NEW_NETNS_FIGURES] +
                    ["jitter-jitter"] + ["netns-throughput-old-" + n for n in OLD_NETNS_FIGURES])
        self.assertEqual([m["figure"] for m in self.manifest], expected)
        self.assertEqual(self.by_name["jitter-jitter"]["kind"], "jitter")
        self.assertEqual(self.by_name["netns-throughput-sweep-cpu-split"]["kind"], "netns")
        written = sorted(os.listdir(self.out))
        self.assertEqual(written, sorted([n + e for n in expected for e in (".png", ".pdf")] + ["figures.json"]))
        for m in self.manifest:
            self.assertEqual(m["files"], [m["figure"] + ".png", m["figure"] + ".pdf"])
            png, pdf = (os.path.join(self.out, f) for f in m["files"])
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), PNG_SIGNATURE, png)
            with open(pdf, "rb") as f:
                self.assertEqual(f.read(4), b"%PDF", pdf)
            for path in (png, pdf):
                self.assertGreater(os.path.getsize(path), 5000, path)

    def test_old_file_skips_the_new_figures(self):
        lines = self.stdout.splitlines()
        for name in NEW_NETNS_FIGURES:
            skipped = [l for l in lines if l.startswith("netns-throughput-old-%s: not produced: " % name)]
            self.assertEqual(len(skipped), 1, name)
            self.assertTrue(skipped[0].endswith("(from %s)" % self.inputs[2]), skipped[0])
            self.assertFalse(os.path.exists(os.path.join(self.out, "netns-throughput-old-%s.png" % name)))

    def test_captions(self):
        cap = self.by_name["jitter-jitter"]["caption"]
        for part in ("Test CPU 9000, 2 cores", "hosts: host, stock kernel", "host kernel: Linux 6.1.0-test",
                     "commit fedcba987654", "source: jitter-host.json"):
            self.assertIn(part, cap)
        self.assertNotIn("ULS kernel VM", cap)
        cap = self.by_name["netns-throughput-sweep-load-curve"]["caption"]
        for part in ("hosts: netns", "commit fedcba987654", "source: throughput-sweep.json"):
            self.assertIn(part, cap)

    def test_notes(self):
        notes = {m["figure"]: " ".join(m["notes"]) for m in self.manifest}
        p = "netns-throughput-sweep-"
        self.assertIn("user-thread:af_xdp relay at 512 B: PDR not drawn: inconsistent", notes[p + "frame-size"])
        self.assertIn("raw-socket:af_packet relay at 1472 B: no PDR (proxy exited", notes[p + "frame-size"])
        self.assertIn("sandbox:af_xdp/mprotect relay at 90% of its PDR: not drawn (no latency histogram)",
                      notes[p + "latency-fractions"])
        self.assertIn("user-thread:af_xdp relay: no cpu.proxy_cpu_split_ns_per_forwarded", notes[p + "cpu-split"])
        self.assertIn("16 entries at 256/512/1024/1472 B not drawn here", notes[p + "capacity"])
        for name in ("load-curve", "competition-jitter", "latency-cdf", "cpu", "overload"):
            self.assertEqual(notes[p + name], "", name)
        self.assertEqual(notes["jitter-jitter"], "")

    def test_reproducible(self):
        out = os.path.join(self.tmp, "again")
        rc, _, err = run_main(["--out", out, self.inputs[1]])
        self.assertEqual(rc, 0, err)
        for ext in (".png", ".pdf"):
            with open(os.path.join(self.out, "jitter-jitter" + ext), "rb") as a, \
                    open(os.path.join(out, "jitter-jitter" + ext), "rb") as b:
                self.assertEqual(a.read(), b.read(), ext)


class SelectionTest(unittest.TestCase):
    """Which rows each figure draws (the drawers called directly, no files written)."""

    @classmethod
    def setUpClass(cls):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cls.plt = plt
        cls.sweep = load_testdata("throughput-sweep.json")

    def tearDown(self):
        self.plt.close("all")

    def test_common_load_rows_leave_out_the_sweep_and_competitors(self):
        rows = figures.common_load_rows(self.sweep)
        self.assertEqual([r["method"] for r in rows], ["kernel-socket", "sandbox", "user-thread"])
        for r in rows:
            self.assertNotIn("load_fraction", r)
            self.assertEqual(r.get("competitors", 0), 0)
        self.assertEqual(len(figures.sweep_rows(self.sweep)), 24)
        self.assertEqual(len(figures.max_rows(self.sweep)), 6)
        self.assertEqual(figures.competitors_of({"competitors": 2}), 2)
        self.assertEqual(figures.competitors_of({}), 0)
        self.assertIsNone(figures.competitors_of({"competitors": "two"}))

    def test_existing_figures_draw_only_their_rows(self):
        f = figures.netns_latency(self.plt, self.sweep, "")
        self.assertEqual(len(f.axes[0].lines), 3)  # one CDF per common-load row, no sweep or competitor point
        f = figures.netns_cpu(self.plt, self.sweep, "")
        self.assertEqual(len(f.axes[0].patches), 6)  # host and process bar per common-load row
        f = figures.netns_overload(self.plt, self.sweep, "")
        self.assertEqual(sum(len(ax.containers) for ax in f.axes), 6)  # 3 jobs x 64 and 1472 B
        f = figures.netns_capacity(self.plt, self.sweep, "")
        self.assertEqual([t.get_text() for t in f.axes[0].get_yticklabels()],
                         ["raw-socket:af_packet relay", "user-thread:af_xdp relay", "sandbox:af_xdp/mprotect relay",
                          "kernel-socket:batched relay"])

    def test_new_figures(self):
        f = figures.netns_load_curve(self.plt, self.sweep, "")
        self.assertEqual(len(f.axes[0].containers), 27)  # 3 jobs x (8 fractions + max)
        f = figures.netns_competition(self.plt, self.sweep, "")
        self.assertEqual(len(f.axes[0].containers), 8)  # 2 jobs x 0/1/2/4 competitors
        f = figures.netns_latency_fractions(self.plt, self.sweep, "")
        self.assertEqual([len(ax.lines) for ax in f.axes], [3 + 1, 3 + 1, 2 + 1])  # CDFs + the 0.99 line
        f = figures.netns_frame_size(self.plt, self.sweep, "")
        self.assertEqual(len(f.axes[0].containers), 18)  # 20 entries less the inconsistent and the errored

    def test_new_figures_need_their_fields(self):
        doc = dict(self.sweep, results=[dict(r, load_fraction=0.2) for r in figures.sweep_rows(self.sweep)])
        figures.netns_load_curve(self.plt, doc, "")
        with self.assertRaises(figures.NotApplicable):
            figures.netns_latency_fractions(self.plt, doc, "")
        with self.assertRaises(figures.NotApplicable):
            figures.netns_competition(self.plt, doc, "")
        with self.assertRaises(figures.NotApplicable):
            figures.netns_frame_size(self.plt, dict(doc, capacity=[e for e in doc["capacity"]
                                                                   if e["payload_bytes"] == 64]), "")

    def test_ci(self):
        self.assertEqual(figures.point_with_ci(5, {"mean": 4, "lo": 3, "hi": 6}), (4, 1, 2))
        self.assertEqual(figures.point_with_ci(5, {"mean": 4, "lo": -3, "hi": 6}), (4, 4, 2))  # drawn to 0
        self.assertEqual(figures.point_with_ci(5, None), (5, None, None))
        self.assertEqual(figures.point_with_ci(5, {"mean": 4, "lo": 6, "hi": 3}), (5, None, None))
        self.assertEqual(figures.point_with_ci(5, {"mean": 4, "lo": 4, "hi": 4, "n": 1, "defined": False}),
                         (5, None, None))
        self.assertIsNone(figures.point_with_ci(None, {"mean": "x"}))

    def test_jitter_error_bars_from_ci95(self):
        host = load_testdata("jitter-host.json")
        f = figures.host_jitter(self.plt, host, "")
        self.assertEqual(len(f.axes[0].containers), 11)  # 12 runs, one with its ci95 "defined": false
        f = figures.vm_jitter(self.plt, VM_JITTER, "")
        self.assertEqual(len(f.axes[0].containers), 0)

    def test_vm_jitter_launches_drawn_as_median_and_range(self):
        # Two launches per point (vm_jitter --launches 2) under icount: one point per hog count at
        # the launches' median with a bar over their range; a log axis when the values span
        # 0.006 us (a thread no hog delays) to 100 us.
        runs = []
        for launch, k in ((1, 1.0), (2, 3.0)):
            for s, sd in (("uls-upcall", 10.0 * k), ("user-thread", 0.006)):
                for h in (0, 2):
                    runs.append({"protection": "kernel", "service": s, "hogs": h, "launch": launch,
                                 "clock": "icount", "delay_us": {"stddev": sd if h else 100.0, "p99": 4.0 * k}})
        doc = {"experiment": "vm_jitter", "environment": environment("vm", accel="tcg"),
               "config": {"period_us": 1000}, "runs": runs}
        f = figures.vm_jitter(self.plt, doc, "")
        ax = f.axes[0]
        self.assertEqual(ax.get_yscale(), "log")
        upcall = [line for line in ax.get_lines() if line.get_color() == "#4c72b0" and len(line.get_xdata()) > 1]
        self.assertEqual(len(upcall), 1)
        self.assertEqual(list(upcall[0].get_ydata()), [100.0, 20.0])  # median of 10 and 30 at 2 hogs
        self.assertEqual(len(ax.containers), 4)  # a range bar at every point that had two launches
        self.assertIn("icount", f.fig._suptitle.get_text())



class VmMicroTest(unittest.TestCase):
    """//bench:vm_micro's file (a real quick run, plots/testdata/vm-micro.json): the figure, a run
    without instruction counts (KVM), and a file without runs."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(self.tmp, "mplconfig"))

    def test_figure(self):
        out = os.path.join(self.tmp, "figs")
        rc, stdout, stderr = run_main(["--out", out, os.path.join(TESTDATA, "vm-micro.json")])
        self.assertEqual(rc, 0, stderr)
        with open(os.path.join(out, "figures.json")) as f:
            manifest = json.load(f)
        self.assertEqual([m["figure"] for m in manifest], ["vm_micro-invocation"])
        self.assertIn("ULS kernel VM", manifest[0]["caption"])
        with open(os.path.join(out, "vm_micro-invocation.png"), "rb") as f:
            self.assertEqual(f.read(8), PNG_SIGNATURE)
        with open(os.path.join(out, "vm_micro-invocation.pdf"), "rb") as f:
            self.assertEqual(f.read(4), b"%PDF")

    def test_without_instruction_counts_and_without_runs(self):
        doc = load_testdata("vm-micro.json")
        for op in doc["runs"][0]["ops"]:
            op.pop("insns_per_op", None)
            op["insns_per_op_unavailable"] = "KVM: no instruction counting"
        no_insns = os.path.join(self.tmp, "vm-micro-kvm.json")
        with open(no_insns, "w") as f:
            json.dump(doc, f)
        doc["runs"] = []
        empty = os.path.join(self.tmp, "vm-micro-empty.json")
        with open(empty, "w") as f:
            json.dump(doc, f)
        out = os.path.join(self.tmp, "figs")
        rc, stdout, stderr = run_main(["--out", out, no_insns, empty])
        self.assertEqual(rc, 0, stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "vm_micro-vm-micro-kvm-invocation.png")), stdout)
        self.assertIn("vm_micro-vm-micro-empty-invocation: not produced: no runs", stdout)


class VmSizesTest(unittest.TestCase):
    """A VM run at several payload sizes: the VM figures draw the first size (the targets' and the
    cost runs') and say how many rows they left out."""

    def test_other_sizes_are_noted_not_drawn(self):
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(tmp, "mplconfig"))
        doc = json.loads(json.dumps(VM))
        doc["config"] = {"payload_bytes": 24, "payloads": [24, 512]}
        big = vm_row("sandbox", "uls", "relay", "rate+latency", 9000.0, 8000.0, 900.0, 1500.0)
        big["payload_bytes"] = 512
        doc["results"].append(big)
        self.assertEqual(len(figures.vm_first_size_rows(doc)), len(VM["results"]))
        path = os.path.join(tmp, "vm.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        out = os.path.join(tmp, "figs")
        rc, stdout, stderr = run_main(["--out", out, path])
        self.assertEqual(rc, 0, stderr)
        with open(os.path.join(out, "figures.json")) as f:
            manifest = {m["figure"]: m for m in json.load(f)}
        self.assertIn("1 row(s) at other payload sizes not drawn", " ".join(manifest["vm-rate"].get("notes", [])))


def vm_search_doc():
    """A VM run with --vm-search --loads 0.1,0.5,0.9 (synthetic): two jobs' capacity entries, the
    sweep's rows (two repetitions at 50%, one of them without valid one-way delays) and the run's
    summary, as //bench:throughput --hosts=vm writes them."""
    def cap(method, variant, lo, hi):
        return {"method": method, "variant": variant, "mode": "relay", "payload_bytes": 24,
                "search_ceiling_final_pps": hi * 1.3,
                "ndr": {"status": "measured", "lower_pps": lo * 0.9, "upper_pps": lo, "loss_criterion": 0.0},
                "pdr": {"status": "measured", "lower_pps": lo, "upper_pps": hi, "loss_criterion": 0.005}}

    def row(method, variant, purpose, offered, frac, rep, valid, delay):
        key = "%s|%s|relay|24|%s|%s" % (method, variant, purpose,
                                        "max" if offered == "max" else "fraction:%g" % frac)
        r = {"method": method, "variant": variant, "mode": "relay", "purpose": purpose, "offered": offered,
             "payload": 24, "payload_bytes": 24, "rep": rep, "point": key + "|rep:%d" % rep,
             "latency": {"one_way_valid": valid,
                         "latency_ns": {"histogram": {"below_zero": 0, "buckets": [[delay, 10], [delay * 2, 1]]}}}}
        if frac is not None:
            r["load_fraction"] = frac
        return r

    rows, summary = [], []
    for method, variant, pdr, delay in (("sandbox", "uls", 10000.0, 2000000), ("kernel-socket", "batched", 5000.0, 900000)):
        rows.append(row(method, variant, "rate+latency", "max", None, 0, True, delay * 8))
        summary.append({"point": "%s|%s|relay|24|rate+latency|max" % (method, variant), "method": method,
                        "variant": variant, "mode": "relay", "purpose": "rate+latency", "offered": "max",
                        "payload_bytes": 24, "repetitions": 1, "errors": 0, "offered_pps": pdr * 1.5,
                        "delivered_pps": pdr * 1.1})
        for frac in (0.1, 0.5, 0.9):
            reps = 2 if frac == 0.5 else 1
            for rep in range(reps):
                rows.append(row(method, variant, "load", round(frac * pdr), frac, rep, rep == 0, delay))
            s = {"point": "%s|%s|relay|24|load|fraction:%g" % (method, variant, frac), "method": method,
                 "variant": variant, "mode": "relay", "purpose": "load", "offered": round(frac * pdr),
                 "payload_bytes": 24, "load_fraction": frac, "repetitions": reps, "errors": 0,
                 "offered_pps": frac * pdr, "delivered_pps": frac * pdr}
            if reps == 2:
                s["delivered_pps_ci95"] = {"mean": frac * pdr, "lo": frac * pdr * 0.9, "hi": frac * pdr * 1.1}
            summary.append(s)
    return {"schema": "ulsnet.throughput-vm.v2", "environment": environment("vm", accel="tcg"),
            "config": {"payload_bytes": 24}, "results": rows, "summary": summary,
            "capacity": [cap("sandbox", "uls", 10000.0, 11000.0), cap("kernel-socket", "batched", 5000.0, 5600.0)]}


class VmSearchTest(unittest.TestCase):
    """A VM run with the search and the offered-load sweep: capacity, load-curve and latency-fraction
    figures from its capacity entries and summary; an older VM file gives none of them."""

    @classmethod
    def setUpClass(cls):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        cls.plt = plt

    def tearDown(self):
        self.plt.close("all")

    def test_view(self):
        view = figures.vm_point_view(vm_search_doc())
        self.assertEqual(len(view["results"]), 8)
        self.assertEqual(len(figures.sweep_rows(view)), 6)
        self.assertEqual(len(figures.max_rows(view)), 2)
        half = [p for p in view["results"] if p.get("load_fraction") == 0.5 and p["method"] == "sandbox"][0]
        # Two repetitions, only the first with valid one-way delays: its histogram alone.
        self.assertEqual(half["latency_ns"]["histogram"]["buckets"], [[2000000, 10], [4000000, 1]])
        self.assertEqual(half["delivered_pps_ci95"]["lo"], 4500.0)
        self.assertEqual(figures.merge_histograms([{"buckets": [[5, 1], [7, 2]]}, {"below_zero": 1, "buckets": [[7, 3]]},
                                                   {"buckets": "x"}]),
                         {"below_zero": 1.0, "buckets": [[5, 1.0], [7, 5.0]]})
        self.assertIsNone(figures.merge_histograms([None, {}]))

    def test_figures(self):
        doc = vm_search_doc()
        f = figures.vm_capacity(self.plt, doc, "")
        self.assertEqual([t.get_text() for t in f.axes[0].get_yticklabels()],
                         ["kernel-socket:batched relay", "sandbox:uls relay"])
        f = figures.vm_load_curve(self.plt, doc, "")
        self.assertEqual(len(f.axes[0].containers), 8)  # 2 jobs x (3 fractions + max)
        f = figures.vm_latency_fractions(self.plt, doc, "")
        self.assertEqual([len(ax.lines) for ax in f.axes], [2 + 1, 2 + 1, 2 + 1])  # CDFs + the 0.99 line

    def test_older_vm_file_gives_none_of_them(self):
        for draw in (figures.vm_capacity, figures.vm_load_curve, figures.vm_latency_fractions):
            with self.assertRaises(figures.NotApplicable):
                draw(self.plt, VM, "")

    def test_through_main(self):
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(tmp, "mplconfig"))
        path = write(os.path.join(tmp, "vm.json"), vm_search_doc())
        out = os.path.join(tmp, "figs")
        rc, stdout, stderr = run_main(["--out", out, path])
        self.assertEqual(rc, 0, stderr)
        for stem in ("vm-capacity", "vm-load-curve", "vm-latency-fractions", "vm-rate"):
            for ext in ("png", "pdf"):
                self.assertGreater(os.path.getsize(os.path.join(out, "%s.%s" % (stem, ext))), 5000, stem)


class SshTest(unittest.TestCase):
    """A real-hosts run (//bench/ssh:ssh_throughput, schema ulsnet.throughput-ssh.v1): the netns
    figures it has the fields for (the common load, CPU split and competitors too), captioned with the proxy host's machine and the controller's
    commit."""

    def test_figures_and_caption(self):
        tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.environ.setdefault("MPLCONFIGDIR", os.path.join(tmp, "mplconfig"))
        doc = load_testdata("throughput-sweep.json")
        doc["schema"] = "ulsnet.throughput-ssh.v1"
        doc["controller"] = {"environment": doc.pop("environment")}
        doc["hosts"] = {"proxy": {"target": "p1", "environment": {"cpu_model": "Proxy CPU 1", "cores": 8,
                                                                  "kernel": "Linux 6.9.0-proxy"}}}
        self.assertEqual(figures.classify(doc), figures.KIND_SSH)
        path = write(os.path.join(tmp, "ssh.json"), doc)
        out = os.path.join(tmp, "figs")
        rc, stdout, stderr = run_main(["--out", out, path])
        self.assertEqual(rc, 0, stderr)
        with open(os.path.join(out, "figures.json")) as f:
            manifest = {m["figure"]: m for m in json.load(f)}
        self.assertEqual(sorted(manifest), ["ssh-capacity", "ssh-competition-jitter", "ssh-cpu-split", "ssh-latency-cdf",
                                            "ssh-latency-fractions", "ssh-load-curve", "ssh-overload"])
        cap = manifest["ssh-capacity"]["caption"]
        self.assertIn("machine: Proxy CPU 1, 8 cores", cap)
        self.assertIn("hosts: ssh (proxy p1)", cap)
        self.assertIn("host kernel: Linux 6.9.0-proxy", cap)
        for m in manifest.values():
            for name in m["files"]:
                self.assertGreater(os.path.getsize(os.path.join(out, name)), 5000, name)
        # Without the search and the sweep: the unpaced points' figures only.
        doc.pop("capacity")
        doc["results"] = figures.max_rows(doc)
        path = write(os.path.join(tmp, "ssh-plain.json"), doc)
        rc, stdout, stderr = run_main(["--out", os.path.join(tmp, "plain"), path])
        self.assertEqual(rc, 0, stderr)
        for name in ("capacity", "load-curve", "cpu-split", "competition-jitter"):
            self.assertIn("ssh-%s: not produced" % name, stdout)
        self.assertTrue(os.path.exists(os.path.join(tmp, "plain", "ssh-overload.png")))


if __name__ == "__main__":
    unittest.main()
