#!/usr/bin/python3
"""Figures from ulsnet result files (never runs an experiment).

    bazel run //plots:figures -- --out DIR FILE [FILE ...]

Each FILE is a result JSON written by //bench:throughput (namespace hosts, schema
ulsnet.throughput.v2; VM hosts, schema ulsnet.throughput-vm.v2), //bench:jitter (on the host),
//bench:vm_jitter, //bench:vm_forward or //bench:micro. Every figure is written as PNG and PDF into DIR, with a manifest,
DIR/figures.json. Input that is not one of these kinds, or not readable JSON, is reported on
stderr with the file's name and the program exits 2 before drawing anything. See
plots/README.md.
"""

import argparse
import json
import math
import os
import re
import sys
import textwrap

KIND_NETNS = "netns"
KIND_VM = "vm"
KIND_VM_JITTER = "vm_jitter"
KIND_JITTER = "jitter"
KIND_VM_FORWARD = "vm_forward"
KIND_MICRO = "micro"
KIND_VM_MICRO = "vm_micro"
KIND_SSH = "ssh"

SCHEMA_KINDS = {
    "ulsnet.throughput.v2": KIND_NETNS,
    "ulsnet.throughput-vm.v2": KIND_VM,
    "ulsnet.throughput-ssh.v1": KIND_SSH,
}
EXPERIMENT_KINDS = {
    "vm_jitter": KIND_VM_JITTER,
    "jitter": KIND_JITTER,
    "vm_forward": KIND_VM_FORWARD,
    "vm_micro": KIND_VM_MICRO,
}

# The figures each kind gives, in order: (name, what it shows). File names are
# <kind>-<name>.png/.pdf (see output_stem for several files of one kind). A figure whose fields
# a file does not have at all (an older file) is not produced: its drawer raises NotApplicable.
FIGURES = {
    KIND_NETNS: [
        ("capacity", "NDR and PDR brackets per method"),
        ("overload", "delivered vs offered at the unpaced generator"),
        ("latency-cdf", "latency CDF at the common load"),
        ("cpu", "CPU per forwarded packet at the common load"),
        ("frame-size", "PDR vs payload size, in packets/s and in Gbit/s"),
        ("load-curve", "delivered vs offered over the offered-load sweep (receive livelock)"),
        ("latency-fractions", "latency CDFs at 10%, 50% and 90% of each job's PDR"),
        ("cpu-split", "proxy CPU per forwarded packet split user/system/softirq/irq"),
        ("competition-jitter", "latency and IPDV p99 vs CPU-bound competitors on the proxy's CPU"),
    ],
    KIND_VM: [
        ("insns", "proxy-VM instructions per forwarded packet"),
        ("rate", "forwarding rate at the unpaced sender"),
        ("capacity", "NDR and PDR brackets per method (--vm-search)"),
        ("load-curve", "delivered vs offered over the offered-load sweep (--loads)"),
        ("latency-fractions", "latency CDFs at 10%, 50% and 90% of each job's PDR (--loads)"),
    ],
    KIND_SSH: [
        ("capacity", "NDR and PDR brackets per method, real hosts (--search)"),
        ("overload", "delivered vs offered at the unpaced generator, real hosts"),
        ("load-curve", "delivered vs offered over the offered-load sweep, real hosts (--loads)"),
        ("latency-fractions", "latency CDFs at 10%, 50% and 90% of each job's PDR, real hosts (--loads)"),
        ("latency-cdf", "latency CDF at the common load, real hosts"),
        ("cpu-split", "proxy CPU per forwarded packet split user/system/softirq/irq, real hosts"),
        ("competition-jitter", "latency and IPDV p99 vs CPU-bound competitors on the proxy's CPU, real hosts "
                               "(--competitors)"),
    ],
    KIND_VM_JITTER: [
        ("jitter", "invocation delay jitter and p99 vs CPU hogs"),
    ],
    KIND_JITTER: [
        ("jitter", "invocation delay jitter and p99 vs CPU-bound competitors, stock kernel"),
    ],
    KIND_VM_FORWARD: [
        ("delivery", "delivered rate and loss vs offered rate"),
    ],
    KIND_VM_MICRO: [
        ("invocation", "raise -> extension -> return on the ULS kernel vs call, system call, signal, pipe, in guest "
                       "instructions and emulated time"),
    ],
    KIND_MICRO: [
        ("invocation", "invocation costs: upcall per protection mode vs call, system call, signal, switches"),
    ],
}

CAPTION_FONTSIZE = 7
NOTE_FONTSIZE = 7


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit 2."""


class NotApplicable(Exception):
    """The file has none of the fields a figure draws (an older file): the figure is not produced."""


# ---------------------------------------------------------------------------------------------
# Reading and classifying input


def load_result(path, name=None):
    """Returns (kind, document) or raises InputError naming the file (name: as the user gave it)."""
    opened, path = path, (name or path)
    try:
        with open(opened, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise InputError("%s: cannot read: %s" % (path, e.strerror or e))
    try:
        doc = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError("%s: not UTF-8 text (%s)" % (path, e.reason))
    except json.JSONDecodeError as e:
        raise InputError("%s: malformed JSON: %s (line %d, column %d)" % (path, e.msg, e.lineno, e.colno))
    except RecursionError:
        raise InputError("%s: malformed JSON: nested too deeply" % path)
    kind = classify(doc)
    if kind is None:
        what = "a JSON %s" % type(doc).__name__
        if isinstance(doc, dict):
            if "schema" in doc:
                what = "schema %r" % (doc.get("schema"),)
            elif "experiment" in doc:
                what = "experiment %r" % (doc.get("experiment"),)
            else:
                what = "no 'schema' or 'experiment' field"
        raise InputError(
            "%s: not a result file this program draws (%s); expected schema %s, or experiment %s"
            % (path, what, " or ".join(sorted(SCHEMA_KINDS)),
               " or ".join(sorted(EXPERIMENT_KINDS)) + ", or //bench:micro's Google Benchmark JSON"))
    return kind, doc


def classify(doc):
    if not isinstance(doc, dict):
        return None
    schema = doc.get("schema")
    if isinstance(schema, str) and schema in SCHEMA_KINDS:
        return SCHEMA_KINDS[schema]
    experiment = doc.get("experiment")
    if isinstance(experiment, str) and experiment in EXPERIMENT_KINDS:
        return EXPERIMENT_KINDS[experiment]
    # Google Benchmark's JSON (//bench:micro --benchmark_out_format=json).
    if isinstance(doc.get("benchmarks"), list) and isinstance(doc.get("context"), dict):
        return KIND_MICRO
    return None


# ---------------------------------------------------------------------------------------------
# Field access that never raises on missing or mistyped fields


def num(x):
    """A finite number, or None (bools and strings are not numbers)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def obj(x):
    return x if isinstance(x, dict) else {}


def arr(x):
    return x if isinstance(x, list) else []


def text(x, default="?"):
    if isinstance(x, str) and x:
        return x
    if num(x) is not None:
        return "%g" % x
    return default


def median(values):
    v = sorted(values)
    if not v:
        return None
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2.0


def short(s, n=70):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def kfmt(pps):
    """Compact rate: 581616 -> '582k'."""
    if pps is None:
        return "-"
    if abs(pps) >= 1e6:
        return "%.2fM" % (pps / 1e6)
    if abs(pps) >= 1e3:
        return "%.0fk" % (pps / 1e3)
    return "%.0f" % pps


# ---------------------------------------------------------------------------------------------
# Captions and labels


def ssh_environment(doc):
    """A real-hosts run's environment for its caption: the proxy host's machine and kernel (where the
    method ran), the controller's commit (what was built and copied), hosts "ssh"."""
    proxy = obj(obj(obj(doc.get("hosts")).get("proxy")).get("environment"))
    ctl = obj(obj(doc.get("controller")).get("environment"))
    env = dict(ctl)
    for k in ("cpu_model", "cores", "kernel"):
        if k in proxy:
            env[k] = proxy[k]
    env["hosts"] = "ssh (proxy %s)" % text(obj(obj(doc.get("hosts")).get("proxy")).get("target"))
    return env


def caption_text(kind, doc, source):
    env = obj(doc.get("environment")) if kind != KIND_SSH else ssh_environment(doc)
    if kind == KIND_MICRO:  # Google Benchmark's context, with what //bench:micro adds to it
        ctx = obj(doc.get("context"))
        env = {"cpu_model": ctx.get("cpu_model"), "cores": ctx.get("num_cpus"), "hosts": "this host",
               "kernel": ctx.get("kernel"), "describe": ctx.get("describe"), "commit": ctx.get("commit"),
               "dirty": ctx.get("dirty") in (True, "true"), "date": ctx.get("date")}
    cpu = text(env.get("cpu_model"), "CPU unknown")
    cores = num(env.get("cores"))
    machine = "%s, %d cores" % (cpu, cores) if cores is not None else "%s, cores unknown" % cpu
    hosts = text(env.get("hosts"), {KIND_NETNS: "netns", KIND_JITTER: "this host"}.get(kind, "vm"))
    if isinstance(env.get("accel"), str) and env.get("accel"):
        hosts += " (accel %s)" % env["accel"]
    # The two jitter experiments differ in the kernel the services run on: say which.
    if kind == KIND_JITTER:
        hosts += ", stock kernel"
    elif kind in (KIND_VM_JITTER, KIND_VM_MICRO):
        hosts += ", ULS kernel VM"
    kernel = text(env.get("kernel"), "unknown")
    commit = env.get("describe") if isinstance(env.get("describe"), str) and env.get("describe") else None
    if commit is None:
        c = env.get("commit") if isinstance(env.get("commit"), str) else doc.get("commit")
        commit = c[:12] if isinstance(c, str) and c else "unknown"
    if env.get("dirty") is True:
        commit += " (dirty)"
    parts = ["machine: " + machine, "hosts: " + hosts, "host kernel: " + kernel, "commit " + commit]
    if isinstance(env.get("date"), str) and env.get("date"):
        parts.append(env["date"])
    parts.append("source: " + os.path.basename(source))
    return "  |  ".join(parts)


def netns_label(e):
    """method:variant[/protection] mode, as the README's tables name a job."""
    label = "%s:%s" % (text(e.get("method")), text(e.get("variant")))
    prot = e.get("protection")
    if isinstance(prot, str) and prot not in ("", "n/a", "none-applicable"):
        label += "/" + prot
    if isinstance(e.get("mode"), str):
        label += " " + e["mode"]
    return label


def competitors_of(r):
    """The number of CPU-bound competitors during a results point: 0 when the field is absent (older
    files), None when it is there but not a whole number >= 0 (then the point is in no figure)."""
    if "competitors" not in r:
        return 0
    c = num(r.get("competitors"))
    return int(c) if c is not None and c >= 0 and c == int(c) else None


def common_load_rows(doc):
    """The common-load points: load_basis, not a point of the offered-load sweep (no load_fraction),
    no competitors. The existing latency-cdf and cpu figures draw these only."""
    return [r for r in arr(doc.get("results")) if isinstance(r, dict) and "load_basis" in r
            and "load_fraction" not in r and competitors_of(r) == 0]


def sweep_rows(doc):
    """The offered-load sweep's paced points (a numeric load_fraction), without competitors."""
    return [r for r in arr(doc.get("results")) if isinstance(r, dict) and num(r.get("load_fraction")) is not None
            and competitors_of(r) == 0]


def max_rows(doc):
    """The unpaced points (load "max"), without competitors."""
    return [r for r in arr(doc.get("results")) if isinstance(r, dict) and r.get("load") == "max"
            and competitors_of(r) == 0]


def payload_of(r):
    b = num(r.get("payload_bytes"))
    return int(b) if b is not None else None


def ci_of(x):
    """(mean, lo, hi) of a {"mean", "lo", "hi"} confidence interval, or None: also when it says
    "defined": false (//bench:jitter writes one so, with lo = hi = mean, for a single repetition)."""
    x = obj(x)
    if x.get("defined") is False:
        return None
    m, lo, hi = num(x.get("mean")), num(x.get("lo")), num(x.get("hi"))
    if m is None or lo is None or hi is None or lo > hi:
        return None
    return m, lo, hi


def point_with_ci(value, ci, scale=1.0):
    """(y, [lower error], [upper error]) for errorbar: the CI's mean and its bounds when the file has a
    CI (two or more repetitions), else the value with no bar; None when neither. A CI reaching below 0
    (Student t on few repetitions) is drawn to 0."""
    c = ci_of(ci)
    if c is not None:
        m, lo, hi = (v * scale for v in c)
        return m, max(0.0, m - max(lo, 0.0)), max(0.0, hi - m)
    v = num(value)
    if v is None:
        return None
    return v * scale, None, None


def vm_label(r):
    label = "%s:%s" % (text(r.get("method")), text(r.get("variant")))
    if isinstance(r.get("mode"), str):
        label += " " + r["mode"]
    return label


class Styles:
    """A colour and marker per label, stable within one input file (first appearance order)."""

    MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]

    def __init__(self, labels):
        import matplotlib

        self.cmap = matplotlib.colormaps["tab20"] if hasattr(matplotlib, "colormaps") else None
        self.index = {}
        for l in labels:
            self.index.setdefault(l, len(self.index))

    def color(self, label):
        i = self.index.setdefault(label, len(self.index))
        if self.cmap is None:
            import matplotlib.pyplot as plt

            return plt.get_cmap("tab20")(i % 20)
        return self.cmap(i % 20)

    def marker(self, label):
        i = self.index.setdefault(label, len(self.index))
        return self.MARKERS[i % len(self.MARKERS)]

    def linestyle(self, label):
        i = self.index.setdefault(label, len(self.index))
        return ["-", "--", "-.", ":"][(i // 20) % 4] if i >= 20 else ["-", "--"][i % 2]


# ---------------------------------------------------------------------------------------------
# Figure frame: title, caption, notes, saving


class Figure:
    def __init__(self, plt, width, height, ncols=1, sharey=False, nrows=1):
        self.plt = plt
        self.fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), sharey=sharey, squeeze=False)
        self.axes = [a for row in axes for a in row]
        self.notes = []

    def note(self, s):
        if s not in self.notes:
            self.notes.append(s)

    def finish(self, title, caption, legend_handles=None, legend_title=None, legend_cols=1):
        fig = self.fig
        width_in = fig.get_figwidth()
        # Characters per line at the caption's size (about 0.5 em per character).
        per_line = max(40, int(width_in * 72 / (CAPTION_FONTSIZE * 0.52)))
        cap_lines = textwrap.wrap(caption, per_line) or [""]
        note_lines = []
        if self.notes:
            note_lines = textwrap.wrap("Notes: " + "; ".join(self.notes), per_line)
            if len(note_lines) > 8:
                note_lines = note_lines[:8]
                note_lines[-1] += " ..."
        line_in = CAPTION_FONTSIZE * 1.35 / 72.0
        bottom_in = 0.12 + line_in * (len(cap_lines) + len(note_lines)) + (0.06 if note_lines else 0)
        height_in = fig.get_figheight()
        # A long title is wrapped (about 0.55 em per character at 11 pt).
        fig.suptitle("\n".join(textwrap.wrap(title, max(40, int(width_in * 72 / (11 * 0.55))))), fontsize=11)
        y = 0.08 / height_in
        fig.text(0.01, y, "\n".join(cap_lines), fontsize=CAPTION_FONTSIZE, color="0.3",
                 ha="left", va="bottom", family="sans-serif")
        if note_lines:
            y_note = y + line_in * len(cap_lines) / height_in + 0.04 / height_in
            fig.text(0.01, y_note, "\n".join(note_lines), fontsize=NOTE_FONTSIZE, color="firebrick",
                     ha="left", va="bottom")
        right = 1.0
        if legend_handles:
            leg = fig.legend(handles=legend_handles, loc="center right", fontsize=8, title=legend_title,
                             title_fontsize=8, ncol=legend_cols, frameon=False,
                             bbox_to_anchor=(0.995, 0.5 + bottom_in / height_in / 2))
            fig.canvas.draw()
            bb = leg.get_window_extent().transformed(fig.transFigure.inverted())
            right = max(0.35, bb.x0 - 0.01)
        fig.tight_layout(rect=[0, bottom_in / height_in, right, 1.0])

    def save(self, out_dir, stem):
        png = stem + ".png"
        pdf = stem + ".pdf"
        # No creation dates in the files: the same results give the same bytes.
        self.fig.savefig(os.path.join(out_dir, png), dpi=130, metadata={"Software": None})
        self.fig.savefig(os.path.join(out_dir, pdf), metadata={"CreationDate": None, "Producer": None})
        self.plt.close(self.fig)
        return [png, pdf]


def empty_panel(ax, message):
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9,
            color="0.4", wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# ---------------------------------------------------------------------------------------------
# netns (ulsnet.throughput.v2)


def netns_capacity(plt, doc, caption):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    entries = [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]
    # Newer files search every payload size: this figure shows the smallest (the paper's small-packet
    # case); the PDR at every size is in frame-size.
    all_sizes = sorted({payload_of(e) for e in entries if payload_of(e) is not None})
    others = []
    if len(all_sizes) > 1:
        others = [e for e in entries if payload_of(e) not in (None, all_sizes[0])]
        entries = [e for e in entries if payload_of(e) in (None, all_sizes[0])]
    n = max(1, len(entries))
    f = Figure(plt, 11, max(3.8, 1.6 + 0.42 * n))
    ax = f.axes[0]
    if others:
        f.note("%d entries at %s B not drawn here (this figure: %d B; the PDR at every size: frame-size)" % (
            len(others), "/".join(str(s) for s in all_sizes[1:]), all_sizes[0]))
    colors = {"ndr": "#4c72b0", "pdr": "#dd8452"}
    sizes = sorted({payload_of(e) for e in entries if payload_of(e) is not None})
    xmax = 0.0
    # Missing-value notes are drawn at the left of their row; where to put them is known at the end.
    row_notes = []
    for i, e in enumerate(entries):
        y = n - 1 - i
        label = netns_label(e)
        if isinstance(e.get("error"), str) or ("ndr" not in e and "pdr" not in e):
            why = e.get("error") if isinstance(e.get("error"), str) else "no ndr/pdr in the entry"
            row_notes.append((y, "search error: " + short(why, 90)))
            f.note("%s: no NDR/PDR (%s)" % (label, short(why, 60)))
            continue
        ceiling = num(e.get("search_ceiling_final_pps"))
        if ceiling is not None:
            ax.plot([ceiling / 1e3], [y], marker="|", markersize=14, color="0.45", mew=1.5, zorder=3)
            xmax = max(xmax, ceiling)
        for crit, dy in (("ndr", 0.19), ("pdr", -0.19)):
            c = obj(e.get(crit))
            yy = y + dy
            status = c.get("status") if isinstance(c.get("status"), str) else None
            lower, upper = num(c.get("lower_pps")), num(c.get("upper_pps"))
            censored = c.get("censored") is True or status == "censored"
            if not c:
                row_notes.append((yy, "%s: missing" % crit.upper()))
                f.note("%s: no %s object" % (label, crit.upper()))
                continue
            if status not in ("measured", "censored"):
                desc = status or "no status"
                if status == "inconsistent":
                    desc += " (%s / %s)" % (kfmt(lower), kfmt(upper))
                row_notes.append((yy, "%s: %s" % (crit.upper(), desc)))
                f.note("%s %s not drawn: %s%s" % (
                    label, crit.upper(), desc,
                    (" - " + short(c["note"], 120)) if isinstance(c.get("note"), str) else ""))
                continue
            if lower is None:
                row_notes.append((yy, "%s: no lower bound" % crit.upper()))
                f.note("%s %s: %s without lower_pps" % (label, crit.upper(), status))
                continue
            ax.barh(yy, lower / 1e3, height=0.36, color=colors[crit], zorder=2)
            xmax = max(xmax, lower)
            if censored or upper is None:
                ax.plot([lower / 1e3], [yy], marker=">", color="black", markersize=6, zorder=4)
                ax.text(lower / 1e3, yy, "   \u2265 %s" % kfmt(lower), va="center", ha="left", fontsize=7)
                xmax = max(xmax, lower * 1.12)
            else:
                ax.errorbar([lower / 1e3], [yy], xerr=[[0], [max(0.0, upper - lower) / 1e3]], fmt="none",
                            ecolor="black", elinewidth=1.2, capsize=3, zorder=4)
                xmax = max(xmax, upper)
    if not entries:
        empty_panel(ax, "no capacity entries in this file (a run with --no-search?)")
    else:
        ax.set_yticks(range(n))
        ax.set_yticklabels([netns_label(e) for e in reversed(entries)], fontsize=8)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xlim(0, max(1.0, xmax * 1.05 / 1e3))
        for y, s in row_notes:
            ax.text(ax.get_xlim()[1] * 0.005, y, s, va="center", ha="left", fontsize=7, color="firebrick",
                    style="italic")
        size = ("%s B payload" % "/".join(str(s) for s in sizes)) if sizes else "payload size not recorded"
        ax.set_xlabel("rate (kpps, %s)" % size)
        ax.grid(axis="x", color="0.9", zorder=0)
        ax.set_axisbelow(True)
    pdr_loss = None
    for e in entries:
        pdr_loss = num(obj(e.get("pdr")).get("loss_criterion"))
        if pdr_loss is not None:
            break
    handles = [
        Patch(color=colors["ndr"], label="NDR (loss 0)"),
        Patch(color=colors["pdr"], label="PDR (loss \u2264 %s%%)" % ("%g" % (pdr_loss * 100) if pdr_loss is not None else "?")),
        Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
               label="bar: passed rate;\nwhisker: to the failed rate"),
        Line2D([], [], color="black", marker=">", linestyle="none", label="\u2265: censored at the\nsearch ceiling"),
        Line2D([], [], color="0.45", marker="|", linestyle="none", markersize=12, mew=1.5,
               label="search ceiling\n(final duration)"),
    ]
    f.finish("NDR and PDR per method: measured brackets [passed, failed)", caption, handles)
    return f


def netns_overload(plt, doc, caption):
    from matplotlib.lines import Line2D

    rows = max_rows(doc)
    entries = [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]
    styles = Styles([netns_label(e) for e in entries] + [netns_label(r) for r in rows])
    sizes = sorted({int(num(r.get("payload_bytes"))) for r in rows if num(r.get("payload_bytes")) is not None})
    if any(num(r.get("payload_bytes")) is None for r in rows):
        sizes.append(None)
    ncols = max(1, len(sizes))
    f = Figure(plt, 4.6 * ncols + 3.2, 5.2, ncols=ncols)
    used = []
    for ax, size in zip(f.axes, sizes or [None]):
        panel = [r for r in rows if (num(r.get("payload_bytes")) is None if size is None
                                     else num(r.get("payload_bytes")) == size)]
        top = 0.0
        drawn = 0
        for r in panel:
            label = netns_label(r)
            if isinstance(r.get("error"), str):
                f.note("%s at %s B: error (%s)" % (label, text(size), short(r["error"], 60)))
            off, dlv = num(r.get("offered_pps")), num(r.get("delivered_pps"))
            if off is None or dlv is None:
                f.note("%s at %s B: no offered/delivered rate" % (label, text(size)))
                continue
            lo, hi = num(r.get("delivered_pps_min")), num(r.get("delivered_pps_max"))
            yerr = None
            if lo is not None and hi is not None:
                yerr = [[max(0.0, dlv - lo) / 1e3], [max(0.0, hi - dlv) / 1e3]]
                top = max(top, hi)
            ax.errorbar([off / 1e3], [dlv / 1e3], yerr=yerr, fmt=styles.marker(label), color=styles.color(label),
                        ecolor=styles.color(label), capsize=3, markersize=6, elinewidth=1, zorder=3,
                        markeredgecolor="black", markeredgewidth=0.4)
            top = max(top, off, dlv)
            drawn += 1
            if label not in used:
                used.append(label)
        if not drawn:
            empty_panel(ax, "no max-load rows" + ("" if size is None else " at %d B" % size))
            continue
        lim = top * 1.08 / 1e3
        ax.plot([0, lim], [0, lim], linestyle="--", color="0.5", linewidth=1, zorder=1)
        ax.text(lim * 0.97, lim * 0.97, "delivered = offered", ha="right", va="bottom", fontsize=7, color="0.4",
                rotation=0)
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("offered (kpps, generator unpaced)")
        ax.set_ylabel("delivered (kpps)")
        ax.set_title("%s B payload" % size if size is not None else "payload size not recorded", fontsize=10)
        ax.grid(color="0.92")
    if not rows:
        f.note("no results rows at load \"max\"")
    handles = [Line2D([], [], color=styles.color(l), marker=styles.marker(l), linestyle="none",
                      markeredgecolor="black", markeredgewidth=0.4, label=l) for l in used]
    f.finish("Overload: delivered vs offered at the unpaced generator (median; whiskers: min-max of the repetitions)",
             caption, handles, legend_title="method:variant mode")
    return f


def bucket_upper(lower):
    """The upper edge of a log-linear bucket (one per ns below 64, then 64 per power of two)."""
    lo = int(lower)
    if lo < 64:
        return lo + 1
    p = lo.bit_length() - 1
    return lo + max(1, (1 << p) >> 6)


def histogram_cdf(hist):
    """(x_ns upper edges, cumulative fraction, total) from a histogram, or None if unusable."""
    below = 0.0
    if isinstance(hist, dict):
        buckets = hist.get("buckets")
        below = num(hist.get("below_zero")) or 0.0
    else:
        buckets = hist
    if not isinstance(buckets, list):
        return None
    pairs = []
    for b in buckets:
        if not isinstance(b, (list, tuple)) or len(b) != 2:
            return None
        lo, n = num(b[0]), num(b[1])
        if lo is None or n is None or lo < 0 or n < 0:
            return None
        pairs.append((lo, n))
    pairs.sort()
    total = below + sum(n for _, n in pairs)
    if total <= 0:
        return None
    xs, ys = [], []
    acc = below
    if pairs:
        xs.append(pairs[0][0])
        ys.append(acc / total)
    for lo, n in pairs:
        acc += n
        xs.append(bucket_upper(lo))
        ys.append(acc / total)
    return xs, ys, total


def netns_latency(plt, doc, caption):
    from matplotlib.lines import Line2D

    rows = common_load_rows(doc)
    entries = [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]
    styles = Styles([netns_label(e) for e in entries] + [netns_label(r) for r in rows])
    f = Figure(plt, 13, 5.4, ncols=2)
    ax, tail = f.axes
    handles = []
    sizes = {num(r.get("payload_bytes")) for r in rows}
    for r in rows:
        label = netns_label(r)
        if len(sizes) > 1 and num(r.get("payload_bytes")) is not None:
            label += " %d B" % num(r.get("payload_bytes"))
        lat = obj(r.get("latency_ns"))
        cdf = histogram_cdf(lat.get("histogram")) if "histogram" in lat else None
        if cdf is None:
            why = "error: " + short(r["error"], 50) if isinstance(r.get("error"), str) else (
                "no latency histogram" if "histogram" not in lat else "unreadable latency histogram")
            f.note("%s: not drawn (%s)" % (label, why))
            continue
        xs, ys, total = cdf
        xus = [x / 1e3 for x in xs]
        kw = dict(color=styles.color(label), linestyle=styles.linestyle(label), linewidth=1.3)
        ax.plot(xus, ys, **kw)
        tx = [(x, 1.0 - y) for x, y in zip(xus, ys) if 1.0 - y > 0.5 / total]
        if tx:
            tail.plot([t[0] for t in tx], [t[1] for t in tx], **kw)
        handles.append(Line2D([], [], label=label, **kw))
    load = num(doc.get("common_load_pps"))
    if handles:
        ax.set_xscale("log")
        ax.set_ylim(0, 1.0)
        ax.set_xlabel("one-way delay (\u00b5s, log scale)")
        ax.set_ylabel("fraction of packets \u2264 delay")
        ax.set_title("CDF", fontsize=10)
        ax.grid(which="both", color="0.92")
        tail.set_xscale("log")
        tail.set_yscale("log")
        tail.set_xlabel("one-way delay (\u00b5s, log scale)")
        tail.set_ylabel("fraction of packets > delay (log scale)")
        tail.set_title("tail (1 - CDF)", fontsize=10)
        tail.grid(which="major", color="0.92")
        for q in (1e-2, 1e-3):
            tail.axhline(q, color="0.6", linewidth=0.8, linestyle=":")
            tail.text(tail.get_xlim()[0], q, " p%s" % ("99" if q == 1e-2 else "99.9"), fontsize=7, va="bottom",
                      color="0.4")
    else:
        empty_panel(ax, "no common-load rows with a latency histogram")
        empty_panel(tail, "")
        if not rows:
            f.note("no results rows at the common load (load_basis, no load_fraction, no competitors)")
    title = "Latency at the common load"
    if load is not None:
        title += " (%.0f pps offered" % load
        size_list = sorted(s for s in sizes if s is not None)
        if size_list:
            title += ", %s B" % "/".join("%d" % s for s in size_list)
        title += ")"
    title += ": sender clock at write to receiver XDP timestamp"
    f.finish(title, caption, handles, legend_title="method:variant mode")
    return f


def netns_cpu(plt, doc, caption):
    from matplotlib.patches import Patch

    rows = common_load_rows(doc)
    n = max(1, len(rows))
    f = Figure(plt, 11, max(3.8, 1.6 + 0.42 * n))
    ax = f.axes[0]
    colors = {"host": "#55a868", "process": "#8172b3"}
    sizes = {num(r.get("payload_bytes")) for r in rows}
    labels = []
    xmax = 0.0
    for i, r in enumerate(rows):
        y = n - 1 - i
        label = netns_label(r)
        if len(sizes) > 1 and num(r.get("payload_bytes")) is not None:
            label += " %d B" % num(r.get("payload_bytes"))
        labels.append(label)
        cpu = obj(r.get("cpu"))
        for key, which, dy in (("proxy_host_ns_per_forwarded", "host", 0.19),
                               ("proxy_process_ns_per_forwarded", "process", -0.19)):
            v = num(cpu.get(key))
            if v is None:
                f.note("%s: no cpu.%s%s" % (label, key, (" (error: %s)" % short(r["error"], 40))
                                             if isinstance(r.get("error"), str) else ""))
                ax.text(0, y + dy, "  no %s value" % which, va="center", fontsize=7, color="firebrick",
                        style="italic")
                continue
            ax.barh(y + dy, v, height=0.36, color=colors[which], zorder=2)
            ax.text(v, y + dy, " %.0f" % v, va="center", ha="left", fontsize=7)
            xmax = max(xmax, v)
    if rows:
        ax.set_yticks(range(n))
        ax.set_yticklabels(list(reversed(labels)), fontsize=8)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xlim(0, max(1.0, xmax * 1.12))
        ax.set_xlabel("CPU time per forwarded packet (ns)")
        ax.grid(axis="x", color="0.9", zorder=0)
        ax.set_axisbelow(True)
    else:
        empty_panel(ax, "no common-load rows (load_basis, no load_fraction, no competitors) in this file")
    handles = [Patch(color=colors["host"], label="proxy host\n(CPU 1: process,\nNAPI, softirq)"),
               Patch(color=colors["process"], label="proxy process\n(its own time)")]
    load = num(doc.get("common_load_pps"))
    title = "CPU per forwarded packet at the common load"
    if load is not None:
        title += " (%.0f pps offered)" % load
    f.finish(title + ": medians of the repetitions", caption, handles)
    return f


# ---------------------------------------------------------------------------------------------
# netns, newer files: capacity per payload size, the offered-load sweep, the CPU split by class,
# competitors. Each figure is produced only when the file has its fields (NotApplicable otherwise).


def pdr_bracket(e, label, size, f):
    """(lower, upper or None, censored) of a capacity entry's PDR, or None with a note why not."""
    where = "%s at %s B" % (label, text(size))
    if isinstance(e.get("error"), str) or "pdr" not in e:
        why = e.get("error") if isinstance(e.get("error"), str) else "no pdr in the entry"
        f.note("%s: no PDR (%s)" % (where, short(why, 60)))
        return None
    c = obj(e.get("pdr"))
    status = c.get("status") if isinstance(c.get("status"), str) else None
    lower, upper = num(c.get("lower_pps")), num(c.get("upper_pps"))
    if status not in ("measured", "censored"):
        f.note("%s: PDR not drawn: %s%s" % (where, status or "no status",
                                            (" (%s / %s)" % (kfmt(lower), kfmt(upper))) if status == "inconsistent" else ""))
        return None
    if lower is None:
        f.note("%s: PDR %s without lower_pps" % (where, status))
        return None
    censored = c.get("censored") is True or status == "censored" or upper is None
    return lower, (None if censored else upper), censored


def size_axis(ax, sizes):
    """A log2 payload-size axis with a tick at each size measured."""
    from matplotlib.ticker import FixedLocator, FixedFormatter, NullLocator

    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sizes))
    ax.xaxis.set_major_formatter(FixedFormatter([str(s) for s in sizes]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(sizes[0] / 1.25, sizes[-1] * 1.25)


def netns_frame_size(plt, doc, caption):
    from matplotlib.lines import Line2D

    entries = [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]
    sizes = sorted({payload_of(e) for e in entries if payload_of(e) is not None})
    if len(sizes) < 2:
        raise NotApplicable("capacity searched at %s" % (
            "one payload size only (%d B)" % sizes[0] if sizes else "no recorded payload size"))
    styles = Styles([netns_label(e) for e in entries])
    jobs = {}
    for e in entries:
        if payload_of(e) is not None:
            jobs.setdefault(netns_label(e), {}).setdefault(payload_of(e), []).append(e)
    f = Figure(plt, 13.5, 5.8, ncols=2)
    kax, gax = f.axes
    scales = ((kax, lambda size, pps: pps / 1e3), (gax, lambda size, pps: pps * size * 8 / 1e9))
    handles, censored_any, tops = [], False, [0.0, 0.0]
    for label, per_size in jobs.items():
        pts = []
        for size in sorted(per_size):
            es = per_size[size]
            if len(es) > 1:
                f.note("%s at %d B: %d capacity entries, the first drawn" % (label, size, len(es)))
            b = pdr_bracket(es[0], label, size, f)
            if b is not None:
                pts.append((size,) + b)
        if not pts:
            continue
        color, marker, ls = styles.color(label), styles.marker(label), styles.linestyle(label)
        for i, (ax, scale) in enumerate(scales):
            ax.plot([p[0] for p in pts], [scale(p[0], p[1]) for p in pts], color=color, linestyle=ls,
                    linewidth=1.2, zorder=2)
            for size, lower, upper, censored in pts:
                y = scale(size, lower)
                top = scale(size, upper if upper is not None else lower)
                tops[i] = max(tops[i], top)
                ax.errorbar([size], [y], yerr=None if upper is None else [[0.0], [max(0.0, top - y)]], fmt=marker,
                            color=color, ecolor=color, markerfacecolor="white" if censored else color,
                            markeredgecolor=color if censored else "black", markeredgewidth=1.2 if censored else 0.4,
                            capsize=3, markersize=6, elinewidth=1, zorder=3)
                if censored:
                    ax.annotate("\u2265", (size, y), xytext=(5, 3), textcoords="offset points", fontsize=9,
                                color="black", ha="left", va="bottom")
        censored_any = censored_any or any(p[3] for p in pts)
        handles.append(Line2D([], [], color=color, marker=marker, linestyle=ls, markeredgecolor="black",
                              markeredgewidth=0.4, label=label))
    for (ax, _), top, ylabel, title in zip(
            scales, tops, ("PDR lower bound (kpps)", "PDR lower bound (Gbit/s of UDP payload)"),
            ("packets per second", "payload bit rate (payload bytes x 8 x packets/s)")):
        if not handles:
            empty_panel(ax, "no measured or censored PDR at any payload size")
            continue
        size_axis(ax, sizes)
        ax.set_ylim(0, max(top, 1e-9) * 1.08)
        ax.set_xlabel("UDP payload (bytes, log scale)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(color="0.92")
    if handles:
        handles.append(Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
                              label="point: passed rate;\nbar: to the failed rate"))
        if censored_any:
            handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                                  label="hollow: censored (\u2265,\nsearch ceiling reached)"))
    loss = next((num(obj(e.get("pdr")).get("loss_criterion")) for e in entries
                 if num(obj(e.get("pdr")).get("loss_criterion")) is not None), None)
    f.finish("PDR%s vs UDP payload size, per method: the searched bracket [passed, failed)" % (
        " (loss \u2264 %g%%)" % (loss * 100) if loss is not None else ""), caption, handles,
        legend_title="method:variant mode")
    return f


def sweep_where(r):
    if r.get("load") == "max":
        return "load max"
    fr = num(r.get("load_fraction"))
    return "%g%% of its PDR" % (fr * 100) if fr is not None else "load %s" % text(r.get("load"))


def netns_load_curve(plt, doc, caption):
    from matplotlib.lines import Line2D

    sweep = sweep_rows(doc)
    if not sweep:
        raise NotApplicable("no offered-load sweep points (results[].load_fraction)")
    sizes = sorted({payload_of(r) for r in sweep if payload_of(r) is not None})
    size = sizes[0] if sizes else None
    rows = [r for r in sweep + max_rows(doc) if payload_of(r) == size]
    entries = [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]
    styles = Styles([netns_label(e) for e in entries] + [netns_label(r) for r in rows])
    f = Figure(plt, 11.5, 6.6)
    ax = f.axes[0]
    if len(sizes) > 1:
        f.note("sweep points at %s B not drawn (this figure: the smallest size)" % "/".join(map(str, sizes[1:])))
    handles, top, any_ci, any_max = [], 0.0, False, False
    for label, rs in group_rows(rows, netns_label).items():
        pts = []
        for r in rs:
            where = "%s at %s" % (label, sweep_where(r))
            if isinstance(r.get("error"), str):
                f.note("%s: error (%s)" % (where, short(r["error"], 60)))
            off = num(r.get("offered_pps"))
            p = point_with_ci(r.get("delivered_pps"), r.get("delivered_pps_ci95"), 1e-3)
            if off is None or p is None:
                f.note("%s: no offered_pps/delivered_pps" % where)
                continue
            pts.append((off / 1e3, p, r.get("load") == "max"))
        if not pts:
            continue
        pts.sort(key=lambda t: t[0])
        color, marker = styles.color(label), styles.marker(label)
        ax.plot([p[0] for p in pts], [p[1][0] for p in pts], color=color, linestyle=styles.linestyle(label),
                linewidth=1.2, zorder=2)
        for x, (y, lo, hi), unpaced in pts:
            any_ci = any_ci or lo is not None
            any_max = any_max or unpaced
            ax.errorbar([x], [y], yerr=None if lo is None else [[lo], [hi]], fmt=marker, color=color, ecolor=color,
                        markerfacecolor="white" if unpaced else color, markersize=8 if unpaced else 5,
                        markeredgecolor=color if unpaced else "black", markeredgewidth=1.4 if unpaced else 0.4,
                        capsize=2.5, elinewidth=1, zorder=3)
            top = max(top, x, y + (hi or 0.0))
        handles.append(Line2D([], [], color=color, marker=marker, linestyle=styles.linestyle(label),
                              markeredgecolor="black", markeredgewidth=0.4, label=label))
    if handles:
        lim = top * 1.06
        ax.plot([0, lim], [0, lim], linestyle="--", color="0.5", linewidth=1, zorder=1)
        ax.text(lim * 0.98, lim * 0.98, "delivered = offered", ha="right", va="top", fontsize=7, color="0.4")
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_xlabel("offered (kpps at the generator)")
        ax.set_ylabel("delivered (kpps at the receiver)")
        ax.grid(color="0.92")
        if any_max:
            handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", markersize=8,
                                  linestyle="none", label="hollow: unpaced\ngenerator (load max)"))
        if any_ci:
            handles.append(Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
                                  label="bar: 95% CI of the\nrepetitions' mean"))
    else:
        empty_panel(ax, "no sweep points with offered_pps and delivered_pps")
    fracs = sorted({num(r.get("load_fraction")) for r in rows if num(r.get("load_fraction")) is not None})
    f.finish("Delivered vs offered%s: offered %s x each method's PDR lower bound%s (mean of the repetitions)" % (
        " at %d B payload" % size if size is not None else "",
        "%g-%g" % (fracs[0], fracs[-1]) if len(fracs) > 1 else "".join("%g" % x for x in fracs),
        ", and unpaced" if any_max else ""), caption, handles, legend_title="method:variant mode")
    return f


FRACTIONS = (0.1, 0.5, 0.9)


def netns_latency_fractions(plt, doc, caption):
    from matplotlib.lines import Line2D

    sweep = sweep_rows(doc)
    if not sweep:
        raise NotApplicable("no offered-load sweep points (results[].load_fraction)")

    def at(r, q):
        return abs(num(r.get("load_fraction")) - q) < 1e-6

    chosen = [r for r in sweep if any(at(r, q) for q in FRACTIONS)]
    if not chosen:
        raise NotApplicable("no sweep points at 0.1, 0.5 or 0.9 of a PDR (the file has %s)" % ", ".join(
            "%g" % x for x in sorted({num(r.get("load_fraction")) for r in sweep})))
    sizes = sorted({payload_of(r) for r in chosen if payload_of(r) is not None})
    size = sizes[0] if sizes else None
    chosen = [r for r in chosen if payload_of(r) == size]
    entries = [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]
    styles = Styles([netns_label(e) for e in entries] + [netns_label(r) for r in chosen])
    f = Figure(plt, 15.5, 5.4, ncols=3)
    if len(sizes) > 1:
        f.note("points at %s B not drawn (this figure: the smallest size)" % "/".join(map(str, sizes[1:])))
    used, drawn_axes, xmin, xmax = [], [], None, None
    for ax, q in zip(f.axes, FRACTIONS):
        drawn = 0
        for r in [r for r in chosen if at(r, q)]:
            label = netns_label(r)
            lat = obj(r.get("latency_ns"))
            cdf = histogram_cdf(lat.get("histogram")) if "histogram" in lat else None
            if cdf is None:
                why = "error: " + short(r["error"], 50) if isinstance(r.get("error"), str) else (
                    "no latency histogram" if "histogram" not in lat else "unreadable latency histogram")
                f.note("%s at %g%% of its PDR: not drawn (%s)" % (label, q * 100, why))
                continue
            xs, ys, _ = cdf
            pts = [(x / 1e3, y) for x, y in zip(xs, ys) if x > 0]
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=styles.color(label),
                    linestyle=styles.linestyle(label), linewidth=1.3)
            xmin = pts[0][0] if xmin is None else min(xmin, pts[0][0])
            xmax = pts[-1][0] if xmax is None else max(xmax, pts[-1][0])
            drawn += 1
            if label not in used:
                used.append(label)
        if not drawn:
            empty_panel(ax, "no latency histogram at %g%% of a PDR" % (q * 100))
            continue
        drawn_axes.append(ax)
        ax.set_xscale("log")
        ax.set_ylim(0, 1.0)
        ax.axhline(0.99, color="0.6", linewidth=0.8, linestyle=":")
        ax.set_xlabel("one-way delay (\u00b5s, log scale)")
        ax.set_ylabel("fraction of packets \u2264 delay")
        ax.set_title("offered: %g%% of each method's PDR" % (q * 100), fontsize=10)
        ax.grid(which="both", color="0.92")
    for ax in drawn_axes:  # one delay scale for the three panels
        ax.set_xlim(xmin / 1.3, xmax * 1.3)
    handles = [Line2D([], [], color=styles.color(l), linestyle=styles.linestyle(l), linewidth=1.3, label=l)
               for l in used]
    f.finish("One-way delay at 10%%, 50%% and 90%% of each method's PDR lower bound%s: CDF of the "
             "repetitions' merged histogram (dotted: 0.99)" % (" (%d B payload)" % size if size is not None else ""),
             caption, handles, legend_title="method:variant mode")
    return f


CPU_CLASSES = (("user", "#4c72b0"), ("system", "#c44e52"), ("softirq", "#55a868"), ("irq", "#8172b3"))


def netns_cpu_split(plt, doc, caption):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = common_load_rows(doc)
    if not any(isinstance(obj(r.get("cpu")).get("proxy_cpu_split_ns_per_forwarded"), dict) for r in rows):
        raise NotApplicable("no cpu.proxy_cpu_split_ns_per_forwarded at the common load")
    n = len(rows)
    f = Figure(plt, 11, max(3.8, 1.6 + 0.42 * n))
    ax = f.axes[0]
    sizes = {payload_of(r) for r in rows}
    labels, xmax, host_drawn = [], 0.0, False
    for i, r in enumerate(rows):
        y = n - 1 - i
        label = netns_label(r)
        if len(sizes) > 1 and payload_of(r) is not None:
            label += " %d B" % payload_of(r)
        labels.append(label)
        cpu = obj(r.get("cpu"))
        split = cpu.get("proxy_cpu_split_ns_per_forwarded")
        if not isinstance(split, dict):
            f.note("%s: no cpu.proxy_cpu_split_ns_per_forwarded%s" % (
                label, (" (error: %s)" % short(r["error"], 40)) if isinstance(r.get("error"), str) else ""))
            ax.text(0, y, "  no split", va="center", fontsize=7, color="firebrick", style="italic")
            continue
        left, missing = 0.0, []
        for key, color in CPU_CLASSES:
            v = num(split.get(key))
            if v is None or v < 0:
                missing.append(key)
                continue
            ax.barh(y, v, left=left, height=0.6, color=color, zorder=2)
            left += v
        if missing:
            f.note("%s: no %s in the split" % (label, "/".join(missing)))
        host = num(cpu.get("proxy_host_ns_per_forwarded"))
        if host is not None:
            ax.plot([host], [y], marker="|", color="black", markersize=16, mew=1.5, zorder=4)
            host_drawn = True
        right = max(left, host or 0.0)
        ax.text(right, y, " %.0f ns" % left, va="center", ha="left", fontsize=7)
        xmax = max(xmax, right)
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(reversed(labels)), fontsize=8)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(0, max(1.0, xmax * 1.15))
    ax.set_xlabel("time on the proxy's CPU per forwarded packet (ns), by /proc/stat class")
    ax.grid(axis="x", color="0.9", zorder=0)
    ax.set_axisbelow(True)
    handles = [Patch(color=c, label=k) for k, c in CPU_CLASSES]
    if host_drawn:
        handles.append(Line2D([], [], color="black", marker="|", linestyle="none", markersize=12, mew=1.5,
                              label="proxy host total\n(the cpu figure)"))
    load = num(doc.get("common_load_pps"))
    f.finish("Proxy CPU per forwarded packet by class at the common load%s, no competitors: "
             "medians of the repetitions" % (" (%.0f pps offered)" % load if load is not None else ""),
             caption, handles)
    return f


def value_axis(ax, values):
    """Log scale when the values span more than 30x, else linear from 0."""
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > 30:
        ax.set_yscale("log")
        ax.set_ylim(min(pos) / 1.5, max(pos) * 1.5)
        return True
    ax.set_ylim(0, max(values + [1e-9]) * 1.1)
    return False


def netns_competition(plt, doc, caption):
    from matplotlib.lines import Line2D

    rows = [r for r in arr(doc.get("results")) if isinstance(r, dict) and "load_basis" in r
            and "load_fraction" not in r and competitors_of(r) is not None]
    sizes = {payload_of(r) for r in rows}

    def key(r):
        label = netns_label(r)
        if len(sizes) > 1 and payload_of(r) is not None:
            label += " %d B" % payload_of(r)
        return label

    with_competitors = {key(r) for r in rows if competitors_of(r) > 0}
    if not with_competitors:
        raise NotApplicable("no common-load points with competitors > 0")
    rows = [r for r in rows if key(r) in with_competitors]
    entries = [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]
    styles = Styles([netns_label(e) for e in entries] + [key(r) for r in rows])
    f = Figure(plt, 13.5, 5.6, ncols=2)
    panels = (
        (f.axes[0], "latency p99", lambda r: point_with_ci(obj(r.get("latency_ns")).get("p99"),
                                                            r.get("latency_p99_ns_ci95"), 1e-3),
         "one-way delay, p99 (\u00b5s)", "latency p99"),
        (f.axes[1], "ipdv p99", lambda r: point_with_ci(obj(r.get("ipdv_ns")).get("p99"), None, 1e-3),
         "IPDV p99 (\u00b5s): |delay[i] - delay[i-1]|", "IPDV p99 (median of the repetitions)"),
    )
    handles, counts, any_ci = [], set(), False
    values = {0: [], 1: []}
    for label, rs in group_rows(rows, key).items():
        color, marker, ls = styles.color(label), styles.marker(label), styles.linestyle(label)
        drawn = False
        for i, (ax, what, get, _, _) in enumerate(panels):
            pts = []
            for r in rs:
                p = get(r)
                if p is None:
                    f.note("%s with %d competitors: no %s%s" % (
                        label, competitors_of(r), what,
                        (" (error: %s)" % short(r["error"], 40)) if isinstance(r.get("error"), str) else ""))
                    continue
                pts.append((competitors_of(r), p))
            pts.sort(key=lambda t: t[0])
            if not pts:
                continue
            ax.plot([p[0] for p in pts], [p[1][0] for p in pts], color=color, linestyle=ls, linewidth=1.2, zorder=2)
            for c, (y, lo, hi) in pts:
                ax.errorbar([c], [y], yerr=None if lo is None else [[lo], [hi]], fmt=marker, color=color,
                            ecolor=color, markeredgecolor="black", markeredgewidth=0.4, markersize=6, capsize=3,
                            elinewidth=1, zorder=3)
                values[i] += [y] + ([y - lo, y + hi] if lo is not None else [])
                any_ci = any_ci or lo is not None
                counts.add(c)
            drawn = True
        if drawn:
            handles.append(Line2D([], [], color=color, marker=marker, linestyle=ls, markeredgecolor="black",
                                  markeredgewidth=0.4, label=label))
    for i, (ax, _, _, ylabel, title) in enumerate(panels):
        if not values[i]:
            empty_panel(ax, "no values")
            continue
        log = value_axis(ax, values[i])
        ax.set_xticks(sorted(counts))
        ax.set_xlim(-0.3, max(counts) + 0.3)
        ax.set_xlabel("CPU-bound competitors pinned on the proxy's CPU")
        ax.set_ylabel(ylabel + (", log scale" if log else ""))
        ax.set_title(title, fontsize=10)
        ax.grid(which="both", color="0.92")
    if any_ci:
        handles.append(Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
                              label="latency: mean of the\nrepetitions' p99, bar:\n95% CI"))
    load = num(doc.get("common_load_pps"))
    f.finish("Forwarding under CPU competition at the common load%s: delay and its variation" % (
        " (%.0f pps offered)" % load if load is not None else ""), caption, handles,
        legend_title="method:variant mode")
    return f


# ---------------------------------------------------------------------------------------------
# VM hosts (ulsnet.throughput-vm.v2)


def group_rows(rows, key):
    groups = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return groups


def vm_first_size_rows(doc, f=None):
    """The VM rows at the run's first payload size (its targets' and cost runs' size); the other
    sizes are counted in a note."""
    rows = [r for r in arr(doc.get("results")) if isinstance(r, dict)]
    first = num(obj(doc.get("config")).get("payload_bytes"))
    if first is None:
        return rows
    keep = [r for r in rows if num(r.get("payload_bytes")) in (None, first)]
    if f is not None and len(keep) < len(rows):
        f.note("%d row(s) at other payload sizes not drawn (this figure is at %d B)" % (len(rows) - len(keep), first))
    return keep


def vm_insns(plt, doc, caption):
    from matplotlib.patches import Patch

    rows = vm_first_size_rows(doc)
    purposes = [("cost", "cost runs (paced, under icount: exact)"),
                ("rate+latency", "rate+latency runs (no icount)")]
    per = {p: [r for r in rows if r.get("purpose") == p] for p, _ in purposes}
    n = max([1] + [len(group_rows(v, vm_label)) for v in per.values()])
    f = Figure(plt, 13, 1.8 + 0.45 * n, ncols=2)
    colors = {"user": "#4c72b0", "kernel": "#c44e52"}
    for ax, (purpose, title) in zip(f.axes, purposes):
        groups = group_rows(per[purpose], vm_label)
        labels = list(groups)
        xmax = 0.0
        for i, label in enumerate(labels):
            y = len(labels) - 1 - i
            users, kernels, totals = [], [], []
            for r in groups[label]:
                ins = obj(r.get("proxy_vm_insns_per_forwarded"))
                u, k, t = num(ins.get("user")), num(ins.get("kernel")), num(ins.get("total"))
                if u is None or k is None:
                    why = ("error: " + short(r["error"], 40)) if isinstance(r.get("error"), str) else \
                        "no proxy_vm_insns_per_forwarded {user, kernel}"
                    f.note("%s (%s, rep %s): %s" % (label, purpose, text(r.get("rep")), why))
                    continue
                users.append(u)
                kernels.append(k)
                totals.append(t if t is not None else u + k)
            if not users:
                ax.text(0, y, "  not measured", va="center", fontsize=7, color="firebrick", style="italic")
                continue
            u, k, t = median(users), median(kernels), median(totals)
            ax.barh(y, u, height=0.6, color=colors["user"], zorder=2)
            ax.barh(y, k, left=u, height=0.6, color=colors["kernel"], zorder=2)
            reps = " (median of %d)" % len(users) if len(users) > 1 else ""
            ax.text(u + k, y, " %.0f%s" % (t, reps), va="center", ha="left", fontsize=7)
            xmax = max(xmax, u + k)
        if not labels:
            empty_panel(ax, "no rows with purpose \"%s\"" % purpose)
            ax.set_title(title, fontsize=10)
            continue
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(list(reversed(labels)), fontsize=8)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.set_xlim(0, max(1.0, xmax * 1.25))
        ax.set_xlabel("guest instructions per forwarded packet")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="x", color="0.9", zorder=0)
        ax.set_axisbelow(True)
    handles = [Patch(color=colors["user"], label="user"), Patch(color=colors["kernel"], label="kernel")]
    f.finish("Proxy-VM instructions per forwarded packet (QEMU plugin), user and kernel stacked", caption,
             handles)
    return f


def vm_rate(plt, doc, caption):
    from matplotlib.patches import Patch

    rows = [r for r in vm_first_size_rows(doc)
            if r.get("offered") == "max" and r.get("purpose", "rate+latency") == "rate+latency"]
    groups = group_rows(rows, vm_label)
    labels = list(groups)
    n = max(1, len(labels))
    f = Figure(plt, 11, 1.8 + 0.6 * n)
    vm_first_size_rows(doc, f)
    ax = f.axes[0]
    series = [("offered_pps", "offered (sender)", "#c7c7c7", 0.27),
              ("forwarded_pps", "forwarded (proxy)", "#4c72b0", 0.0),
              ("delivered_pps", "delivered (receiver)", "#55a868", -0.27)]
    xmax = 0.0
    for i, label in enumerate(labels):
        y = n - 1 - i
        for key, _, color, dy in series:
            vals = [num(r.get(key)) for r in groups[label]]
            vals = [v for v in vals if v is not None]
            if not vals:
                errs = [r.get("error") for r in groups[label] if isinstance(r.get("error"), str)]
                f.note("%s: no %s%s" % (label, key, (" (error: %s)" % short(errs[0], 50)) if errs else ""))
                ax.text(0, y + dy, "  no %s" % key, va="center", fontsize=7, color="firebrick", style="italic")
                continue
            m = median(vals)
            xerr = [[m - min(vals)], [max(vals) - m]] if len(vals) > 1 else None
            ax.barh(y + dy, m, height=0.25, color=color, xerr=xerr, capsize=2, zorder=2)
            if key == "forwarded_pps":
                ax.text(max(vals), y + dy, " %.0f" % m, va="center", ha="left", fontsize=7)
            xmax = max(xmax, max(vals))
    if labels:
        ax.set_yticks(range(n))
        ax.set_yticklabels(list(reversed(labels)), fontsize=8)
        ax.set_ylim(-0.6, n - 0.4)
        ax.set_xlim(0, max(1.0, xmax * 1.1))
        sizes = sorted({int(num(r.get("payload_bytes"))) for r in rows if num(r.get("payload_bytes")) is not None})
        ax.set_xlabel("rate (packets/s%s)" % ((", %s B payload" % "/".join(map(str, sizes))) if sizes else ""))
        ax.grid(axis="x", color="0.9", zorder=0)
        ax.set_axisbelow(True)
    else:
        empty_panel(ax, "no rate+latency rows at the unpaced sender (offered \"max\")")
    handles = [Patch(color=c, label=l) for _, l, c, _ in series]
    reps = max([len(v) for v in groups.values()] or [1])
    f.finish("Forwarding rate at the unpaced sender, proxy VM%s" %
             (" (median of %d repetitions; whiskers: min-max)" % reps if reps > 1 else ""), caption, handles)
    return f


def merge_histograms(hists):
    """One {"below_zero", "buckets"} histogram from several of the same scheme (bucket counts added), or
    None when none is usable."""
    below, counts, any_ok = 0.0, {}, False
    for h in hists:
        if not isinstance(h, dict) or not isinstance(h.get("buckets"), list):
            continue
        ok = True
        for b in h["buckets"]:
            if not isinstance(b, (list, tuple)) or len(b) != 2 or num(b[0]) is None or num(b[1]) is None:
                ok = False
                break
        if not ok:
            continue
        any_ok = True
        below += num(h.get("below_zero")) or 0.0
        for lo, n in h["buckets"]:
            counts[num(lo)] = counts.get(num(lo), 0.0) + num(n)
    if not any_ok:
        return None
    return {"below_zero": below, "buckets": [[lo, counts[lo]] for lo in sorted(counts)]}


def vm_point_view(doc):
    """A VM file as the namespace figures read one: its capacity entries (the same shape), and per point
    of its summary (rate+latency and load points; search steps and cost runs are not points here) the
    fields those figures draw: offered/delivered pps with the CI of the repetitions, load ("max" for
    the unpaced sender), load_fraction, and a latency histogram merged from the repetitions whose
    one-way delays are valid (the sender's clock put on the receiver's). Older files without a
    summary give no points."""
    rows = [r for r in arr(doc.get("results")) if isinstance(r, dict) and isinstance(r.get("point"), str)]
    points = []
    for s in arr(doc.get("summary")):
        if not isinstance(s, dict) or s.get("purpose") not in ("rate+latency", "load"):
            continue
        p = {k: s[k] for k in ("method", "variant", "mode", "payload_bytes", "offered_pps", "delivered_pps",
                               "delivered_pps_ci95", "load_fraction", "load_basis", "repetitions") if k in s}
        p["load"] = "max" if s.get("offered") == "max" else s.get("offered")
        if num(s.get("repetitions")) == 0 and num(s.get("errors")):
            p["error"] = "every repetition errored"
        key = s.get("point")
        mine = [r for r in rows if isinstance(key, str) and r["point"].startswith(key + "|rep:")
                and obj(r.get("latency")).get("one_way_valid") is True]
        hist = merge_histograms([obj(obj(obj(r.get("latency")).get("latency_ns")).get("histogram")) for r in mine])
        if hist is not None:
            p["latency_ns"] = {"histogram": hist}
        points.append(p)
    return {"results": points, "capacity": [e for e in arr(doc.get("capacity")) if isinstance(e, dict)],
            "config": doc.get("config"), "environment": doc.get("environment")}


def vm_capacity(plt, doc, caption):
    if not [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]:
        raise NotApplicable("no capacity entries (a VM run without --vm-search)")
    f = netns_capacity(plt, vm_point_view(doc), caption)
    f.note("VMs: one launch of the three VMs per search trial; the bracket is as wide as the trial budget allowed")
    return f


def vm_load_curve(plt, doc, caption):
    view = vm_point_view(doc)
    if not sweep_rows(view):
        raise NotApplicable("no offered-load sweep points (a VM run without --loads, or an older file)")
    return netns_load_curve(plt, view, caption)


def vm_latency_fractions(plt, doc, caption):
    view = vm_point_view(doc)
    if not sweep_rows(view):
        raise NotApplicable("no offered-load sweep points (a VM run without --loads, or an older file)")
    f = netns_latency_fractions(plt, view, caption)
    f.note("VMs: delays only from repetitions whose one-way delays are valid (both guests on their TSC, the "
           "sender's clock put on the receiver's; the bound is in each row's latency.clock_error_bound_ns)")
    return f


def ssh_capacity(plt, doc, caption):
    if not [e for e in arr(doc.get("capacity")) if isinstance(e, dict)]:
        raise NotApplicable("no capacity entries (a real-hosts run without --search)")
    return netns_capacity(plt, doc, caption)


def ssh_overload(plt, doc, caption):
    if not max_rows(doc):
        raise NotApplicable("no unpaced points (--rates without max)")
    return netns_overload(plt, doc, caption)


# ---------------------------------------------------------------------------------------------
# jitter (host), vm_jitter and vm_forward


def jitter_figure(plt, doc, caption, host):
    """The invocation-delay figure of //bench:vm_jitter (host=False: in the ULS-kernel VM, x = CPU hogs
    in the guest) and //bench:jitter (host=True: on the host's stock kernel, x = CPU-bound
    competitors). A run with ci95 (two or more repetitions) is drawn at the CI's mean with the CI as a
    bar; without, at its delay_us value."""
    from matplotlib.lines import Line2D

    runs = [r for r in arr(doc.get("runs")) if isinstance(r, dict)]
    f = Figure(plt, 12, 5.0, ncols=2)
    groups = group_rows(runs, lambda r: (text(r.get("service")), text(r.get("protection"))))
    services = sorted({k[0] for k in groups})
    prots = sorted({k[1] for k in groups})
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    styles_ = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D"]
    handles = []
    hogs_all = set()
    any_ci = False
    any_range = False
    all_y = []
    # The sandboxed service blue, the thread orange, in both experiments; other services after them.
    first = {"uls-upcall": 0, "sandbox": 0, "user-thread": 1, "thread": 1}
    services.sort(key=lambda x: (first.get(x, 2), x))
    for (service, prot), rs in sorted(groups.items()):
        color = palette[services.index(service) % len(palette)] if service not in first else palette[first[service]]
        ls = styles_[prots.index(prot) % len(styles_)]
        mk = markers[prots.index(prot) % len(markers)]
        label = "%s, protection %s" % (service, prot)
        for r in rs:
            if isinstance(r.get("error"), str):  # an incomplete measurement, drawn as the file has it
                f.note("%s, %s %s: %s" % (label, "competitors" if host else "hogs", text(r.get("hogs")),
                                          short(r["error"], 60)))
        drawn = False
        for ax, key, ci_key in zip(f.axes, ("stddev", "p99"), ("delay_stddev_us", "delay_p99_us")):
            by_hogs = {}
            for r in rs:
                h = num(r.get("hogs"))
                p = point_with_ci(obj(r.get("delay_us")).get(key), obj(r.get("ci95")).get(ci_key))
                if h is None or p is None:
                    f.note("%s, %s %s: no delay_us.%s" % (label, "competitors" if host else "hogs",
                                                         text(r.get("hogs")), key))
                    continue
                by_hogs.setdefault(h, []).append(p)
                hogs_all.add(h)
            pts = []
            for h, ps in by_hogs.items():
                if len(ps) == 1:
                    pts.append((h, ps[0]))
                else:  # several launches (vm_jitter --launches): their median, a bar over their range
                    ys = sorted(p[0] for p in ps)
                    y = median(ys)
                    pts.append((h, (y, y - ys[0], ys[-1] - y)))
                    any_range = True
                all_y.extend(p[0] for p in ps)
            pts.sort(key=lambda t: t[0])
            if pts:
                ax.plot([p[0] for p in pts], [p[1][0] for p in pts], color=color, linestyle=ls, marker=mk,
                        linewidth=1.5)
                for h, (y, lo, hi) in pts:
                    if lo is not None:
                        any_ci = any_ci or not any_range
                        ax.errorbar([h], [y], yerr=[[lo], [hi]], fmt="none", ecolor=color, capsize=3,
                                    elinewidth=1)
                drawn = True
        if drawn:
            handles.append(Line2D([], [], color=color, linestyle=ls, marker=mk, label=label))
    period = num(obj(doc.get("config")).get("period_us"))
    for ax, ylabel, title in zip(
            f.axes, ("jitter: std. dev. of the delay (\u00b5s)", "p99 of the delay (\u00b5s)"),
            ("jitter (ran - due, standard deviation)", "99th percentile of the delay")):
        if not handles:
            empty_panel(ax, "no runs with hogs and delay_us")
            continue
        ax.set_xlabel("CPU-bound competitors on the service's CPU (stock kernel)" if host
                      else "CPU hogs on the guest's CPU (ULS kernel VM)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(sorted(hogs_all))
        positive = [y for y in all_y if y > 0]
        if positive and max(positive) / min(positive) > 1000:  # e.g. 0.006 us next to 100 us (icount)
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.grid(color="0.92")
    if any_range:
        handles.append(Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
                              label="point: median of the launches;\nbar: their range"))
    elif any_ci:
        handles.append(Line2D([], [], color="black", marker="|", linestyle="none", markersize=10,
                              label="point: mean of the repetitions;\nbar: 95% CI (Student t)"))
    if host:
        title = "Service invocation delay vs CPU competitors on the host, stock kernel (sandbox vs thread)"
    else:
        title = "Service invocation delay vs CPU hogs in the ULS kernel VM (ULS upcall vs user thread)"
    if period is not None:
        title += ", period %.0f \u00b5s" % period
    if any(r.get("clock") == "icount" for r in runs):
        title += "; guest instruction time (QEMU -icount, 1 ns per instruction)"
    f.finish(title, caption, handles, legend_title="service, protection")
    return f


def vm_jitter(plt, doc, caption):
    return jitter_figure(plt, doc, caption, host=False)


def host_jitter(plt, doc, caption):
    return jitter_figure(plt, doc, caption, host=True)


def vm_forward(plt, doc, caption):
    from matplotlib.lines import Line2D

    runs = [r for r in arr(doc.get("runs")) if isinstance(r, dict)]
    seconds = num(obj(doc.get("config")).get("seconds"))
    f = Figure(plt, 12, 5.0, ncols=2)
    ax, lax = f.axes
    groups = group_rows(runs, lambda r: text(r.get("path")))
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    handles = []
    top = 0.0
    incomplete = False
    for i, (path, rs) in enumerate(groups.items()):
        color = palette[i % len(palette)]
        pts = []
        for r in rs:
            off, dlv = num(r.get("offered_pps")), num(r.get("delivered"))
            count = num(r.get("count"))
            if off is None or dlv is None:
                f.note("path %s: a run without offered_pps/delivered" % path)
                continue
            if count:
                rate = dlv / count * off
            elif seconds:
                rate = dlv / seconds
            else:
                f.note("path %s at %.0f pps: no count or seconds to make a rate" % (path, off))
                continue
            loss = num(r.get("loss_ratio"))
            if loss is None and count:
                loss = max(0.0, (count - dlv) / count)
            complete = r.get("complete") is not False
            if not complete:
                incomplete = True
                f.note("path %s at %.0f pps: run incomplete" % (path, off))
            pts.append((off, rate, loss, complete))
            top = max(top, off, rate)
        pts.sort()
        if not pts:
            continue
        label = path
        lab = next((r.get("label") for r in rs if isinstance(r.get("label"), str)), None)
        if lab:
            label += ":\n" + "\n".join(textwrap.wrap(short(lab, 90), 40))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color=color, linewidth=1.5)
        lpts = [p for p in pts if p[2] is not None]
        lax.plot([p[0] for p in lpts], [p[2] * 100 for p in lpts], color=color, linewidth=1.5)
        for p in pts:
            face = color if p[3] else "white"
            ax.plot([p[0]], [p[1]], marker="o", color=color, markerfacecolor=face, zorder=3)
            if p[2] is not None:
                lax.plot([p[0]], [p[2] * 100], marker="o", color=color, markerfacecolor=face, zorder=3)
        handles.append(Line2D([], [], color=color, marker="o", label=label))
    if handles:
        lim = top * 1.1
        ax.plot([0, lim], [0, lim], linestyle="--", color="0.5", linewidth=1)
        ax.text(lim * 0.95, lim * 0.95, "delivered = offered", ha="right", va="bottom", fontsize=7, color="0.4")
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_xlabel("offered (packets/s)")
        ax.set_ylabel("delivered (packets/s)")
        ax.set_title("delivered vs offered", fontsize=10)
        ax.grid(color="0.92")
        lax.set_xlim(0, lim)
        lax.set_ylim(bottom=0)
        lax.set_xlabel("offered (packets/s)")
        lax.set_ylabel("loss (% of sent)")
        lax.set_title("loss vs offered", fontsize=10)
        lax.grid(color="0.92")
        from matplotlib.ticker import MaxNLocator

        for a in (ax, lax):
            a.xaxis.set_major_locator(MaxNLocator(nbins=5))
        if incomplete:
            handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                                  label="hollow: run incomplete"))
    else:
        empty_panel(ax, "no runs with offered_pps and delivered")
        empty_panel(lax, "")
    fb = num(obj(doc.get("config")).get("frame_bytes"))
    title = "Forwarding through the proxy VM per path"
    if fb is not None:
        title += " (%d-byte frames" % fb + (", %g s per rate)" % seconds if seconds else ")")
    f.finish(title, caption, handles, legend_title="path")
    return f


# The micro-benchmarks the claim C4 compares, bottom to top of the figure, with readable names.
MICRO_ORDER = [
    ("BM_FunctionCall", "function call"),
    ("BM_DomainInvoke/none", "protection domain enter+leave (none)"),
    ("BM_ExtensionInvoke/none", "upcall into an extension (none)"),
    ("BM_NullSyscall", "null system call"),
    ("BM_IoUringNop", "io_uring round trip, no I/O"),
    ("BM_SignalRoundTrip", "signal to self, round trip"),
    ("BM_ExtensionInvoke/pkey", "upcall into an extension (pkey)"),
    ("BM_DomainInvoke/mprotect", "protection domain enter+leave (mprotect)"),
    ("BM_ExtensionInvoke/mprotect", "upcall into an extension (mprotect)"),
    ("BM_ProcessPipeRoundTrip", "process round trip through pipes (2 switches)"),
    ("BM_ThreadHandoff/futex", "thread hand-off round trip, futex (2 CPUs)"),
    ("BM_ThreadHandoff/eventfd", "thread hand-off round trip, eventfd (2 CPUs)"),
]

UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def micro_invocation(plt, doc, caption):
    runs, errors = {}, {}
    for b in arr(doc.get("benchmarks")):
        if not isinstance(b, dict):
            continue
        name = text(b.get("run_name") or b.get("name"), "")
        if name.endswith("/real_time"):
            name = name[:-len("/real_time")]
        if b.get("error_occurred") is True:
            errors[name] = text(b.get("error_message"), "error")
            continue
        if b.get("run_type", "iteration") != "iteration":
            continue
        t, unit = num(b.get("real_time")), UNIT_NS.get(b.get("time_unit"), None)
        if t is None or unit is None:
            continue
        runs.setdefault(name, []).append(t * unit)
    f = Figure(plt, 11, 5.5)
    ax = f.axes[0]
    labels, meds, los, his = [], [], [], []
    for name, label in MICRO_ORDER:
        if name in runs:
            v = sorted(runs[name])
            m = median(v)
            labels.append("%s (%d)" % (label, len(v)))
            meds.append(m)
            los.append(m - v[0])
            his.append(v[-1] - m)
        elif name in errors:
            f.note("%s: not measured: %s" % (label, short(errors[name], 90)))
    if not meds:
        empty_panel(ax, "no benchmark runs")
    else:
        y = list(range(len(meds)))
        colors = ["#c44e52" if "upcall" in l or "domain" in l else "#4c72b0" for l in labels]
        ax.barh(y, meds, color=colors, xerr=[los, his], capsize=3, error_kw={"elinewidth": 1})
        for yi, m, h in zip(y, meds, his):
            ax.text((m + h) * 1.2, yi, ("%.1f ns" % m) if m < 1000 else ("%.2f \u00b5s" % (m / 1e3)), va="center",
                    fontsize=7)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_xscale("log")
        ax.set_xlim(min(meds) / 2, max(meds) * 8)
        ax.set_xlabel("time per operation (ns, log scale): median of repetitions, whiskers min-max")
        ax.grid(axis="x", color="0.92", which="both")
    f.finish("Invocation costs on this host (red: the sandbox's entry; blue: what the paper compares it with)",
             caption)
    return f


VM_MICRO_ORDER = ["function", "syscall", "ioctl", "upcall", "signal", "pipe"]


def vm_micro_invocation(plt, doc, caption):
    """//bench:vm_micro: per protection mode, each operation's guest instructions (left) and
    emulated time (right) per operation, medians with min-max whiskers, log axes."""
    runs = [r for r in arr(doc.get("runs")) if isinstance(r, dict)]
    if not runs:
        raise NotApplicable("no runs")
    f = Figure(plt, 12, 2.2 + 1.9 * len(runs), ncols=2, nrows=len(runs))
    for i, r in enumerate(runs):
        prot = text(r.get("protection"))
        ops = {text(o.get("op"), ""): o for o in arr(r.get("ops")) if isinstance(o, dict)}
        for j, (field, unit) in enumerate((("insns_per_op", "guest instructions"), ("ns_per_op", "ns (emulated)"))):
            ax = f.axes[i * 2 + j]
            labels, meds, los, his = [], [], [], []
            for op in VM_MICRO_ORDER:
                d = obj(obj(ops.get(op)).get(field))
                m, lo, hi = num(d.get("median")), num(d.get("min")), num(d.get("max"))
                if m is None or m <= 0:
                    continue
                labels.append(op)
                meds.append(m)
                los.append(m - (lo if lo is not None else m))
                his.append((hi if hi is not None else m) - m)
            if not meds:
                reason = text(obj(ops.get("upcall")).get(field + "_unavailable"), "not measured in this run")
                empty_panel(ax, "%s: %s" % (unit, short(reason, 60)))
                continue
            y = list(range(len(meds)))
            ax.barh(y, meds, color=["#c44e52" if l == "upcall" else "#4c72b0" for l in labels], xerr=[los, his],
                    capsize=3, error_kw={"elinewidth": 1})
            for yi, m, h in zip(y, meds, his):
                ax.text((m + h) * 1.2, yi, "%.0f" % m, va="center", fontsize=7)
            ax.set_yticks(y)
            ax.set_yticklabels(labels, fontsize=8)
            ax.set_xscale("log")
            ax.set_xlim(min(meds) / 2, max(meds) * 8)
            ax.set_xlabel("%s per operation (log): median, whiskers min-max" % unit, fontsize=8)
            ax.set_title("uls.protect=%s (%s)" % ("0" if prot == "none" else "1", text(r.get("accel"))), fontsize=9)
            ax.set_axisbelow(True)
            ax.grid(axis="x", color="0.92", which="both")
    f.finish("Invocation costs inside a guest on the ULS kernel (red: raise -> extension -> return)", caption)
    return f


DRAW = {
    (KIND_VM_MICRO, "invocation"): vm_micro_invocation,
    (KIND_NETNS, "capacity"): netns_capacity,
    (KIND_NETNS, "overload"): netns_overload,
    (KIND_NETNS, "latency-cdf"): netns_latency,
    (KIND_NETNS, "cpu"): netns_cpu,
    (KIND_NETNS, "frame-size"): netns_frame_size,
    (KIND_NETNS, "load-curve"): netns_load_curve,
    (KIND_NETNS, "latency-fractions"): netns_latency_fractions,
    (KIND_NETNS, "cpu-split"): netns_cpu_split,
    (KIND_NETNS, "competition-jitter"): netns_competition,
    (KIND_VM, "insns"): vm_insns,
    (KIND_VM, "rate"): vm_rate,
    (KIND_VM, "capacity"): vm_capacity,
    (KIND_SSH, "capacity"): ssh_capacity,
    (KIND_SSH, "overload"): ssh_overload,
    (KIND_SSH, "load-curve"): netns_load_curve,
    (KIND_SSH, "latency-fractions"): netns_latency_fractions,
    (KIND_SSH, "latency-cdf"): netns_latency,
    (KIND_SSH, "cpu-split"): netns_cpu_split,
    (KIND_SSH, "competition-jitter"): netns_competition,
    (KIND_VM, "load-curve"): vm_load_curve,
    (KIND_VM, "latency-fractions"): vm_latency_fractions,
    (KIND_VM_JITTER, "jitter"): vm_jitter,
    (KIND_JITTER, "jitter"): host_jitter,
    (KIND_VM_FORWARD, "delivery"): vm_forward,
    (KIND_MICRO, "invocation"): micro_invocation,
}


# ---------------------------------------------------------------------------------------------
# Driver


def resolve(path):
    base = os.environ.get("BUILD_WORKING_DIRECTORY")
    if base and not os.path.isabs(path):
        return os.path.join(base, path)
    return path


def output_stems(inputs):
    """A file-name prefix per input: '<kind>' when it is the only file of its kind, else
    '<kind>-<file stem>' (made unique if two stems are equal)."""
    per_kind = {}
    for path, kind, _ in inputs:
        per_kind.setdefault(kind, []).append(path)
    stems, used = [], set()
    for path, kind, _ in inputs:
        if len(per_kind[kind]) == 1:
            stem = kind
        else:
            base = os.path.basename(path)
            base = base[:-5] if base.endswith(".json") else base
            stem = "%s-%s" % (kind, re.sub(r"[^A-Za-z0-9._-]+", "_", base) or "file")
        s, i = stem, 2
        while s in used:
            s = "%s-%d" % (stem, i)
            i += 1
        used.add(s)
        stems.append(s)
    return stems


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="figures",
        description="Figures (PNG and PDF) and a manifest from ulsnet result JSON files. Never runs experiments.")
    parser.add_argument("--out", required=True, help="output directory (created if missing)")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="result JSON: ulsnet.throughput.v2, ulsnet.throughput-vm.v2, jitter, vm_jitter, vm_forward, "
                             "//bench:micro's Google Benchmark JSON")
    args = parser.parse_args(argv)

    # Every input is read and classified before anything is drawn.
    inputs, errors = [], []
    for given in args.files:
        try:
            kind, doc = load_result(resolve(given), given)
            inputs.append((given, kind, doc))
        except InputError as e:
            errors.append(str(e))
    if errors:
        for e in errors:
            print("figures: " + e, file=sys.stderr)
        return 2

    out_dir = resolve(args.out)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        print("figures: cannot create output directory %s: %s" % (out_dir, e.strerror or e), file=sys.stderr)
        return 2
    if not os.access(out_dir, os.W_OK):
        print("figures: output directory %s is not writable" % out_dir, file=sys.stderr)
        return 2

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    manifest, failed = [], 0
    for (given, kind, doc), stem in zip(inputs, output_stems(inputs)):
        caption = caption_text(kind, doc, given)
        for name, _ in FIGURES[kind]:
            fig_name = "%s-%s" % (stem, name)
            try:
                f = DRAW[(kind, name)](plt, doc, caption)
                files = f.save(out_dir, fig_name)
            except NotApplicable as e:  # an older file without this figure's fields: not produced
                plt.close("all")
                print("%s: not produced: %s (from %s)" % (fig_name, e, given))
                continue
            except Exception as e:  # a figure this program could not draw: reported, the rest go on
                plt.close("all")
                print("figures: %s: figure %s not drawn: %s: %s" % (given, fig_name, type(e).__name__, e),
                      file=sys.stderr)
                failed += 1
                continue
            manifest.append({"figure": fig_name, "files": files, "source": given, "kind": kind,
                             "caption": caption, "notes": f.notes})
            print("%s: %s (from %s%s)" % (
                fig_name, ", ".join(os.path.join(args.out, x) for x in files), given,
                "; %d note%s" % (len(f.notes), "s" if len(f.notes) > 1 else "") if f.notes else ""))
    try:
        with open(os.path.join(out_dir, "figures.json"), "w") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
    except OSError as e:
        print("figures: cannot write %s: %s" % (os.path.join(out_dir, "figures.json"), e.strerror or e),
              file=sys.stderr)
        return 1
    print("manifest: %s (%d figure%s)" % (os.path.join(args.out, "figures.json"), len(manifest),
                                          "" if len(manifest) == 1 else "s"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
