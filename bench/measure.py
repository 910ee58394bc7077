#!/usr/bin/env python3
"""Runs one command and measures its whole process tree.

    measure.py --json OUT.json [--server-pid PID] [--stdout FILE] [--stderr FILE] -- CMD...

Writes JSON with:
  wall_s           wall-clock time
  cpu_user_s, cpu_sys_s, cpu_s
                   user+sys CPU time of the tree (getrusage(RUSAGE_CHILDREN):
                   every descendant that was waited for is included)
  peak_rss_mib     peak resident memory of the tree: the largest sum of VmRSS
                   over the tree's live processes, sampled every 50 ms, or the
                   largest single process's ru_maxrss (exact) if that is higher
  max_single_rss_mib
                   ru_maxrss of the largest single process of the tree
  disk_written_mib bytes the tree caused to be written to storage: ru_oublock
                   (write_bytes / 512 of every reaped descendant, exact)
  disk_written_polled_mib
                   the same from /proc/<pid>/io write_bytes of the live tree,
                   polled every 50 ms (a cross-check; the kernel moves a reaped
                   child's counters into its parent's, so the live sum counts
                   each byte once)
  server_cpu_s, server_disk_written_mib
                   the same for --server-pid (not part of the tree), over the run
  others_cpu_s     CPU time the rest of the machine used during the run
                   (/proc/stat busy time minus the tree and the server):
                   anything well above the poller's own share means the
                   numbers were disturbed
  exit_code

Standard library only; Linux /proc.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def ppid_map():
    """pid -> ppid for every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = read(f"/proc/{name}/stat")
        if not stat:
            continue
        # The command name is in parentheses and may contain spaces.
        rest = stat[stat.rfind(b")") + 2 :].split()
        out[int(name)] = int(rest[1])
    return out


def tree(root):
    parents = ppid_map()
    children = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, ()))
    return out


def write_bytes(pid):
    io = read(f"/proc/{pid}/io")
    if not io:
        return None
    for line in io.splitlines():
        if line.startswith(b"write_bytes:"):
            return int(line.split()[1])
    return None


def rss_bytes(pid):
    statm = read(f"/proc/{pid}/statm")
    if not statm:
        return 0
    return int(statm.split()[1]) * PAGE


def cpu_ticks(pid):
    stat = read(f"/proc/{pid}/stat")
    if not stat:
        return None
    rest = stat[stat.rfind(b")") + 2 :].split()
    # Fields 14 and 15 of stat (utime, stime), counted from field 3 here.
    return int(rest[11]) + int(rest[12])


def busy_seconds():
    """CPU seconds the whole machine has spent busy (all processes)."""
    fields = read("/proc/stat").split(b"\n", 1)[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--stdout")
    ap.add_argument("--stderr")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command")

    server0 = (
        (cpu_ticks(args.server_pid), write_bytes(args.server_pid))
        if args.server_pid
        else None
    )
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0 = busy_seconds()
    out = open(args.stdout, "wb") if args.stdout else None
    err = open(args.stderr, "wb") if args.stderr else None
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err)
    peak_rss = 0
    polled = 0
    while True:
        # Exited? Look without reaping, so the zombie's counters (which
        # include its reaped descendants) can still be read once more.
        done = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        pids = tree(proc.pid)
        total_w, total_rss = 0, 0
        for p in pids:
            w = write_bytes(p)
            if w is not None:
                total_w += w
            total_rss += rss_bytes(p)
        polled = max(polled, total_w)
        peak_rss = max(peak_rss, total_rss)
        if done is not None:
            break
        time.sleep(args.interval)
    _, status, _ = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = busy_seconds() - busy0

    user = ru.ru_utime - ru0.ru_utime
    sys_ = ru.ru_stime - ru0.ru_stime
    maxrss = ru.ru_maxrss * 1024  # KiB on Linux
    mib = 1 << 20
    result = {
        "cmd": cmd,
        "exit_code": proc.returncode,
        "wall_s": wall,
        "cpu_user_s": user,
        "cpu_sys_s": sys_,
        "cpu_s": user + sys_,
        "peak_rss_mib": max(peak_rss, maxrss) / mib,
        "peak_rss_sampled_mib": peak_rss / mib,
        "max_single_rss_mib": maxrss / mib,
        "disk_written_mib": (ru.ru_oublock - ru0.ru_oublock) * 512 / mib,
        "disk_written_polled_mib": polled / mib,
    }
    if server0:
        c1, w1 = cpu_ticks(args.server_pid), write_bytes(args.server_pid)
        if c1 is not None and server0[0] is not None:
            result["server_cpu_s"] = (c1 - server0[0]) / TICK
        if w1 is not None and server0[1] is not None:
            result["server_disk_written_mib"] = (w1 - server0[1]) / mib
    # CPU the rest of the machine used meanwhile: interference (and the
    # measuring itself, a few percent of one core).
    result["others_cpu_s"] = max(0.0, busy - result["cpu_s"] - result.get("server_cpu_s", 0.0))
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
