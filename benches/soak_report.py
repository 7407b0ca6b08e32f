#!/usr/bin/env python3
"""The figures of soak-kill-resume.sh, from the emulator's request log and the script's attempts.

    soak_report.py analyse --log LOG --attempts TSV --size BYTES --part-size BYTES --parallel N
                           --transport NAME --kills-wanted N --wall-s S --verified TEXT --json-out FILE
    soak_report.py render RUN.json... --meta TEXT [--out FILE|-]

`analyse` reads:
  - LOG, the emulator's `--request-log` (one JSON object per request once it is over: `op`,
    `range` = [first, last, total] of a part, `outcome` = status | "withheld" | "closed");
  - TSV, one row per client run (an attempt): `attempt kind delay_ms result wall_ms log_lines
    checkpoint_offsets`, where `log_lines` is how many log lines existed once the attempt was over
    (so the attempt's requests are the lines after the previous attempt's count), `result` is
    `killed`, `exit:N`, and `checkpoint_offsets` the part offsets the checkpoint file held after
    the attempt (comma-separated, `-` for none, `absent` when there was no checkpoint file); then
    optionally `phase` (where the kill was aimed: `start`, `parts`, `-`) and `first_part_ms`.

Definitions (every part is identified by its offset: a new session after a kill re-sends too):
  - a part is *sent* in an attempt when at least one PUT of its range is logged in that attempt,
    whatever the outcome (answered, withheld by a fault, or closed: a body cut by the kill);
  - *re-sent because of kill k*: a part sent in attempt k and sent again in a later attempt, k
    being the last attempt before that one in which it was sent (each re-send counted once);
  - *in flight at kill k*: parts sent in attempt k that the checkpoint did not hold after kill k
    (the client had not recorded them: their answer was not in, or not yet saved);
  - *fault re-sends*: PUTs of a part already sent in the same attempt (5xx, cut bodies, lost
    answers not adopted);
  - *part bytes sent*: the sizes of every PUT's range, summed (an upper bound: a body cut by the
    kill or a fault counts whole).
"""

import argparse
import json
import sys
from collections import defaultdict


def read_attempts(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            fields = line.split("\t")
            attempt, kind, delay, result, wall_ms, log_lines, offsets = fields[:7]
            phase = fields[7] if len(fields) > 7 else "-"
            first = fields[8] if len(fields) > 8 else "-"
            if offsets in ("-", "absent"):
                held = set()
            else:
                held = {int(o) for o in offsets.split(",")}
            rows.append(
                {
                    "attempt": int(attempt),
                    "kind": kind,
                    "delay_ms": None if delay == "-" else int(delay),
                    "result": result,
                    "wall_ms": int(wall_ms),
                    "log_lines": int(log_lines),
                    "checkpoint": None if offsets == "absent" else held,
                    "phase": phase,
                    "first_part_ms": None if first == "-" else int(first),
                }
            )
    return rows


def analyse(args):
    attempts = read_attempts(args.attempts)
    with open(args.log) as f:
        log = [json.loads(line) for line in f if line.strip()]
    # Which attempt each log line belongs to.
    bounds = [a["log_lines"] for a in attempts]
    per_attempt = [[] for _ in attempts]
    i = 0
    for n, record in enumerate(log):
        while i < len(bounds) - 1 and n >= bounds[i]:
            i += 1
        per_attempt[i].append(record)

    total_parts = (args.size + args.part_size - 1) // args.part_size
    sent_in = defaultdict(list)  # offset -> attempts it was sent in (ascending, unique)
    puts = 0
    bytes_sent = 0
    fault_resends = 0
    outcomes = defaultdict(int)
    other_ops = defaultdict(int)
    for a, records in enumerate(per_attempt):
        seen_here = set()
        for r in records:
            if r["op"] != "UploadPart":
                other_ops[f'{r["op"]} {r["outcome"]}'] += 1
                continue
            if not r.get("range"):
                continue
            first, last, _total = r["range"]
            puts += 1
            bytes_sent += last - first + 1
            outcomes[str(r["outcome"])] += 1
            if first in seen_here:
                fault_resends += 1
            else:
                seen_here.add(first)
                sent_in[first].append(a)

    resent = [0] * len(attempts)
    for offs in sent_in.values():
        for earlier, _later in zip(offs, offs[1:]):
            resent[earlier] += 1

    kills = []
    for a, row in enumerate(attempts):
        if row["result"] != "killed":
            continue
        sent_here = {o for o, offs in sent_in.items() if a in offs}
        held = row["checkpoint"] or set()
        kills.append(
            {
                "attempt": row["attempt"],
                "kind": row["kind"],
                "delay_ms": row["delay_ms"],
                "phase": row["phase"],
                "sent": len(sent_here),
                "in_flight": len(sent_here - held),
                "resent": resent[a],
                "checkpoint_parts": None if row["checkpoint"] is None else len(held),
            }
        )
    # A run's start-up (launch to its first part request logged) against the parts the checkpoint
    # already held: what a resume does before it sends anything new.
    startup = []
    for prev, row in zip(attempts, attempts[1:]):
        if row["kind"] == "resume" and row["first_part_ms"] is not None:
            startup.append([len(prev["checkpoint"] or ()), row["first_part_ms"]])
    slope = None
    if len(startup) >= 2:
        n = len(startup)
        mx = sum(h for h, _ in startup) / n
        my = sum(ms for _, ms in startup) / n
        var = sum((h - mx) ** 2 for h, _ in startup)
        if var > 0:
            slope = round(sum((h - mx) * (ms - my) for h, ms in startup) / var, 2)
    resent_per_kill = [k["resent"] for k in kills]
    in_flight = [k["in_flight"] for k in kills]
    over = [k for k in kills if k["resent"] > args.parallel]
    over_in_flight = [k for k in kills if k["resent"] > k["in_flight"]]
    last = attempts[-1] if attempts else None
    summary = {
        "transport": args.transport,
        "size": args.size,
        "part_size": args.part_size,
        "parts": total_parts,
        "parallel": args.parallel,
        "kills_wanted": args.kills_wanted,
        "kills": len(kills),
        "kills_in_start_up": sum(1 for k in kills if k["phase"] == "start"),
        "resumes": sum(1 for a in attempts if a["kind"] == "resume"),
        "restarts": sum(1 for a in attempts[1:] if a["kind"] == "upload"),
        "attempts": len(attempts),
        "wall_s": args.wall_s,
        "attempts_wall_s": round(sum(a["wall_ms"] for a in attempts) / 1000, 2),
        "final_result": last["result"] if last else "none",
        "verified": args.verified,
        "part_puts": puts,
        "part_bytes_sent": bytes_sent,
        "bytes_sent_over_size": round(bytes_sent / args.size, 3) if args.size else None,
        "distinct_parts_sent": len(sent_in),
        "resent_per_kill": resent_per_kill,
        "resent_max": max(resent_per_kill, default=0),
        "resent_mean": round(sum(resent_per_kill) / len(resent_per_kill), 2) if resent_per_kill else 0,
        "resent_total": sum(resent_per_kill),
        "in_flight_per_kill": in_flight,
        "in_flight_max": max(in_flight, default=0),
        "kills_resending_more_than_parallel": len(over),
        "kills_resending_more_than_in_flight": len(over_in_flight),
        "fault_resends": fault_resends,
        "resume_startup": sorted(startup),
        "resume_startup_ms_per_held_part": slope,
        "part_outcomes": dict(sorted(outcomes.items())),
        "other_requests": dict(sorted(other_ops.items())),
        "kill_details": kills,
    }
    with open(args.json_out, "w") as f:
        json.dump(summary, f, indent=1)
    print_summary(summary)
    return 0


def print_summary(s):
    print(f'  transport {s["transport"]}: {s["kills"]} kills (wanted {s["kills_wanted"]}; '
          f'{s["kills_in_start_up"]} aimed at a start-up), {s["resumes"]} resumes, '
          f'{s["restarts"]} fresh uploads after a kill without a checkpoint; final attempt: {s["final_result"]}')
    print(f'    total wall {s["wall_s"]} s (client runs {s["attempts_wall_s"]} s); committed: {s["verified"]}')
    print(f'    parts re-sent per kill: max {s["resent_max"]}, mean {s["resent_mean"]}, total {s["resent_total"]} '
          f'(--parallel {s["parallel"]}; kills re-sending more than that: {s["kills_resending_more_than_parallel"]}; '
          f'more than were in flight: {s["kills_resending_more_than_in_flight"]})')
    print(f'    per kill, re-sent: {" ".join(map(str, s["resent_per_kill"]))}')
    print(f'    per kill, in flight: {" ".join(map(str, s["in_flight_per_kill"]))}')
    print(f'    part PUTs {s["part_puts"]} for {s["parts"]} parts ({s["fault_resends"]} within an attempt, '
          f'after faults); part bytes sent / file size {s["bytes_sent_over_size"]}')
    print(f'    part outcomes {s["part_outcomes"]}; other requests {s["other_requests"]}')
    if s["resume_startup"]:
        lo, hi = s["resume_startup"][0], s["resume_startup"][-1]
        print(f'    resume start-up (launch to first part request): {lo[1]} ms with {lo[0]} parts held ... '
              f'{hi[1]} ms with {hi[0]} held ({s["resume_startup_ms_per_held_part"]} ms per held part)')


def render(args):
    runs = []
    for path in args.runs:
        with open(path) as f:
            runs.append(json.load(f))
    out = []
    out.append("# Kill-and-resume soak")
    out.append("")
    out.append(args.meta)
    out.append("")
    out.append("| transport | kills | resumes | fresh uploads | total wall | parts re-sent per kill (max / mean) | "
               "in flight at a kill (max) | part bytes sent / file size | PUTs (parts) | fault re-sends | commit |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in runs:
        out.append(
            f'| {s["transport"]} | {s["kills"]} of {s["kills_wanted"]} ({s["kills_in_start_up"]} in a start-up) | '
            f'{s["resumes"]} | {s["restarts"]} | '
            f'{s["wall_s"]} s | {s["resent_max"]} / {s["resent_mean"]} (limit {s["parallel"]} in flight) | '
            f'{s["in_flight_max"]} | {s["bytes_sent_over_size"]} | {s["part_puts"]} ({s["parts"]}) | '
            f'{s["fault_resends"]} | {s["verified"]} |'
        )
    out.append("")
    for s in runs:
        out.append(f'**{s["transport"]}**: final attempt {s["final_result"]}; '
                   f're-sent per kill {" ".join(map(str, s["resent_per_kill"])) or "-"}; '
                   f'in flight per kill {" ".join(map(str, s["in_flight_per_kill"])) or "-"}; '
                   f'part outcomes {s["part_outcomes"]}; other requests {s["other_requests"]}; '
                   f'resume start-up (parts held, ms to the first part request) {s.get("resume_startup") or "-"}, '
                   f'{s.get("resume_startup_ms_per_held_part")} ms per held part.')
        out.append("")
    text = "\n".join(out)
    if args.out and args.out != "-":
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("analyse")
    a.add_argument("--log", required=True)
    a.add_argument("--attempts", required=True)
    a.add_argument("--size", type=int, required=True)
    a.add_argument("--part-size", type=int, required=True)
    a.add_argument("--parallel", type=int, required=True)
    a.add_argument("--transport", required=True)
    a.add_argument("--kills-wanted", type=int, required=True)
    a.add_argument("--wall-s", type=float, required=True)
    a.add_argument("--verified", required=True)
    a.add_argument("--json-out", required=True)
    r = sub.add_parser("render")
    r.add_argument("runs", nargs="+")
    r.add_argument("--meta", default="")
    r.add_argument("--out", default="-")
    args = p.parse_args()
    return analyse(args) if args.cmd == "analyse" else render(args)


if __name__ == "__main__":
    sys.exit(main())
