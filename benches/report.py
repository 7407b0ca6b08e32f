"""Turns upload-1gib.sh's rows into a Markdown table with the issue's targets, prints it and writes it.

Rows (TSV): label load secs wall user sys rss_kib emu_cpu verified
"""

import argparse
import datetime
import os
import platform
import subprocess

LABELS = {
    "openssl": ("`openssl sha1` (hashing floor)", "-"),
    "hyper1": ("box-upload-hyper", "1"),
    "hyper4": ("box-upload-hyper", "4"),
    "hyper8": ("box-upload-hyper", "8"),
    "ureq1": ("box-upload-ureq", "1"),
    "ureq4": ("box-upload-ureq", "4"),
    "ureq8": ("box-upload-ureq", "8"),
    "python": ("official Python SDK `upload_big_file`", "1 (serial)"),
    "node": ("official Node SDK `uploadBigFile`", "1 (serial)"),
}
LABELS.update({f"{k}-tls": (f"{v[0]} over TLS", v[1]) for k, v in list(LABELS.items()) if k != "openssl"})
MIB = 1024 * 1024


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        mem = 0
    return f"{os.cpu_count()} × {model}, {mem / 1024:.0f} GiB RAM, Linux {platform.release()}"


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--part-size", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--commit", default="?")
    ap.add_argument("--python-sdk", default="?")
    ap.add_argument("--node-sdk", default="?")
    ap.add_argument("--data-dir", default="?")
    ap.add_argument("--extra-parts", default="", help="label=parts,... for --extra rows")
    ap.add_argument("--link-mbit", type=float, default=None,
                    help="the shaped link's rate: adds each client's share of it")
    ap.add_argument("--out", default="-")
    a = ap.parse_args()

    best = {}
    with open(a.rows) as f:
        for line in f:
            label, load, secs, wall, user, sys_, rss, emu, ok = line.rstrip("\n").split("\t")
            row = dict(load=float(load), secs=float(secs), wall=float(wall), cpu=float(user) + float(sys_),
                       user=float(user), sys=float(sys_), rss=int(rss) / 1024, emu=None if emu == "-" else float(emu),
                       ok=ok)
            if label not in best or row["secs"] < best[label]["secs"]:
                best[label] = row

    size_mib = a.size / MIB
    part_mib = a.part_size / MIB
    lines = []
    lines.append(f"# Upload benchmark: {size_mib:.0f} MiB, {part_mib:.0f} MiB parts")
    lines.append("")
    lines.append(f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}; "
                 f"Rust binaries built from the {a.commit}")
    lines.append(f"- machine: {machine()}")
    lines.append(f"- load average at the end (1, 5, 15 min): {loadavg()}; per-run 1-min load in the table")
    lines.append(f"- emulator: release `box-upload-emulator` on 127.0.0.1, freshly started for each client, "
                 f"part data: {a.data_dir}")
    lines.append(f"- SDKs: {a.python_sdk}, {a.node_sdk}")
    if a.repeat > 1:
        lines.append(f"- each client ran {a.repeat} times; the fastest run is shown")
    lines.append("- upload s: the upload as timed inside the client (no interpreter start-up); MB/s = "
                 "bytes / upload s / 10^6; process wall, CPU (user+sys) and peak RSS from GNU time of "
                 "the client process; emulator CPU = its user+sys for that run; cores busy = (client CPU + "
                 "emulator CPU) / process wall (the machine has "
                 f"{os.cpu_count()})")
    if a.link_mbit:
        lines.append(f"- link: the namespace's loopback shaped to {a.link_mbit:g} Mbit/s (tc tbf); share of link = "
                     "file bytes × 8 / upload s / the link's rate (HTTP headers and TLS framing not counted)")
    lines.append("- client CPU s per GiB = client CPU (user+sys) / file GiB")
    lines.append("")
    link_h = " share of link |" if a.link_mbit else ""
    link_a = "---:|" if a.link_mbit else ""
    lines.append("| client | parts in flight | upload s | MB/s |" + link_h + " process wall s | client CPU s (user+sys) "
                 "| client CPU s per GiB | peak RSS MiB | emulator CPU s | cores busy | load | committed sha1 = source |")
    lines.append("|---|---|---:|---:|" + link_a + "---:|---:|---:|---:|---:|---:|---:|---|")
    extra = [l for l in best if l not in LABELS]
    extra_parts = dict(kv.split("=", 1) for kv in a.extra_parts.split(",") if "=" in kv)
    for label in list(LABELS) + extra:
        name, pif = LABELS.get(label, (f"{label} (extra binary)", extra_parts.get(label, "?")))
        r = best.get(label)
        if not r:
            continue
        mbs = a.size / 1e6 / r["secs"]
        emu = "-" if r["emu"] is None else f"{r['emu']:.2f}"
        # (client CPU + emulator CPU) / upload time: how much of the machine the run kept busy
        busy = (r["cpu"] + (r["emu"] or 0.0)) / r["wall"]
        ok = "n/a" if label == "openssl" else r["ok"]
        share = f" {a.size * 8 / r['secs'] / (a.link_mbit * 1e6) * 100:.1f} % |" if a.link_mbit else ""
        per_gib = r["cpu"] / (a.size / (1024 * MIB))
        lines.append(f"| {name} | {pif} | {r['secs']:.2f} | {mbs:.0f} |{share} {r['wall']:.2f} | "
                     f"{r['cpu']:.2f} ({r['user']:.2f}+{r['sys']:.2f}) | {per_gib:.2f} | {r['rss']:.1f} | {emu} | "
                     f"{busy:.2f} | {r['load']:.2f} | {ok} |")

    # The targets, at 4 parts in flight.
    checks = []
    rss_cap = (4 + 1) * part_mib + 30
    for label in ("hyper4", "ureq4"):
        r = best.get(label)
        if not r:
            continue
        name = LABELS[label][0]
        mbs = a.size / 1e6 / r["secs"]
        for sdk, factor in (("python", 3.0), ("node", 4.0)):
            s = best.get(sdk)
            if s:
                x = mbs / (a.size / 1e6 / s["secs"])
                checks.append((f"{name} ≥ {factor:.0f}× the {sdk.capitalize()} SDK's throughput",
                               f"{x:.1f}×", x >= factor))
        o = best.get("openssl")
        if o:
            x = r["secs"] / o["wall"]
            checks.append((f"{name} upload time ≤ 3.5× one `openssl sha1` pass", f"{x:.2f}×", x <= 3.5))
        checks.append((f"{name} peak RSS ≤ (4+1) × {part_mib:.0f} MiB + 30 MiB = {rss_cap:.0f} MiB",
                       f"{r['rss']:.1f} MiB", r["rss"] <= rss_cap))
    # Issue 14's targets: TLS costs, and the share of a shaped link.
    tls_checks = []
    per_gib = lambda r: r["cpu"] / (a.size / (1024 * MIB))  # noqa: E731
    for label in ("hyper4", "ureq4"):
        t, p, py = best.get(label + "-tls"), best.get(label), best.get("python-tls")
        name = LABELS[label][0]
        if t and p:
            x = per_gib(t) / per_gib(p)
            tls_checks.append((f"{name} client CPU per GiB over TLS ≤ 1.2× plain", f"{x:.2f}×", x <= 1.2))
        if t and py:
            x = per_gib(t) / per_gib(py)
            tls_checks.append((f"{name} client CPU per GiB over TLS ≤ ½ the Python SDK's over TLS", f"{x:.2f}×",
                               x <= 0.5))
    if a.link_mbit:
        for label in ("hyper4", "ureq4", "hyper4-tls", "ureq4-tls"):
            r = best.get(label)
            if r:
                share = a.size * 8 / r["secs"] / (a.link_mbit * 1e6)
                tls_checks.append((f"{LABELS[label][0]} (default settings) moves ≥ 97 % of the link's rate",
                                   f"{share * 100:.1f} %", share >= 0.97))
    if tls_checks:
        lines.append("")
        lines.append("Targets (issue 14):")
        lines.append("")
        lines.append("| target | measured | met |")
        lines.append("|---|---:|---|")
        for what, measured, met in tls_checks:
            lines.append(f"| {what} | {measured} | {'yes' if met else '**no**'} |")
    if checks:
        lines.append("")
        lines.append("Targets (issue 5, at 4 parts in flight):")
        lines.append("")
        lines.append("| target | measured | met |")
        lines.append("|---|---:|---|")
        for what, measured, met in checks:
            lines.append(f"| {what} | {measured} | {'yes' if met else '**no**'} |")

    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")
    if a.out != "-":
        with open(a.out, "w") as f:
            f.write(text)
        print(f"\nwritten to {a.out}")


if __name__ == "__main__":
    main()
