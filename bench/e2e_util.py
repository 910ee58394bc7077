#!/usr/bin/env python3
"""Helpers for bench/e2e.sh (standard library only).

    e2e_util.py size 1G                 -> bytes (accepts 512M, 2GiB, 1e9, ...)
    e2e_util.py check A.tar.gz B.tar.gz   -> compares two tarballs' members
    e2e_util.py seed ROOT BUCKET PREFIX -> writes s3s-fs ETag records for the
                                           files already under ROOT/BUCKET/PREFIX
    e2e_util.py targets 'F1;F2' --table therock_amdgpu_targets.cmake
                                        -> the gfx targets of those families,
                                           ';'-separated (unknown names fail)
    e2e_util.py report ...              -> the Markdown report (see --help)
"""

import argparse
import base64
import hashlib
import json
import os
import platform
import sys

MIB = 1 << 20


def parse_size(text):
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = 1
    for suffix, m in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)):
        if t.endswith(suffix):
            t, mult = t[: -len(suffix)], m
            break
    return int(float(t) * mult)


def b64(s):
    return base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")


def seed(root, bucket, prefix):
    """s3s-fs stores object KEY of BUCKET as the file ROOT/BUCKET/KEY. Without
    a record of its ETag it hashes the whole file on every GetObject (and
    HeadObject), which would cost the server a full read per request; so
    write the record PutObject would have written."""
    base = os.path.join(root, bucket)
    n = 0
    for dirpath, _, files in os.walk(os.path.join(base, prefix)):
        for name in files:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, base).replace(os.sep, "/")
            md5 = hashlib.md5()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    md5.update(chunk)
            info = os.path.join(root, f".bucket-{b64(bucket)}.object-{b64(key)}.internal.json")
            with open(info, "w") as f:
                json.dump({"e_tag": md5.hexdigest()}, f)
            n += 1
    print(f"seeded {n} objects in s3://{bucket}/{prefix}/", file=sys.stderr)


def family_table(path):
    """family -> [gfx targets] from a family table, read by the test oracle's
    reader (tests/tools/trees.py): one reading of TheRock's CMake calls."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "tools"))
    import trees

    return trees.family_table(path)


def targets(families, table_path):
    table = family_table(table_path)
    out = []
    for f in (f.strip() for f in families.split(";")):
        if not f:
            continue
        if f not in table:
            sys.exit(f"family {f!r} is not in {table_path}; known: {' '.join(sorted(table))}")
        out += [t for t in table[f] if t not in out]
    print(";".join(out))


def members(path):
    """name -> (kind, size, mode, mtime, link target, md5) of a .tar.gz,
    normalised to what extraction gives: a hardlink is the file it links
    (`tar c` of a tree picks which name of an inode holds the data), and
    directories carry no mtime (one directory comes from many artifacts),
    symlinks no mode."""
    import tarfile

    out = {}
    with tarfile.open(path, "r|gz") as tf:
        for m in tf:
            name = m.name.removeprefix("./")
            if not name or name == ".":
                continue
            if m.isfile():
                h = hashlib.md5()
                f = tf.extractfile(m)
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
                out[name] = ("file", m.size, m.mode, int(m.mtime), "", h.hexdigest())
            elif m.islnk():
                out[name] = ("hardlink", m.linkname.removeprefix("./"))
            elif m.isdir():
                out[name] = ("dir", 0, m.mode, None, "", None)
            elif m.issym():
                # A symlink's mode means nothing on Linux (rockpack keeps
                # 0775: it never writes world-write bits).
                out[name] = ("symlink", 0, None, int(m.mtime), m.linkname, None)
            else:
                out[name] = ("other", m.type)
    # Names of one inode: the data and the mtime sit with whichever came first.
    linked = {n for n, v in out.items() if v[0] == "hardlink"}
    linked |= {out[n][1] for n in linked}
    for name in linked:
        v = out[name]
        if v[0] == "hardlink":
            v = out.get(v[1], v)
        out[name] = v[:3] + (None,) + v[4:] if v[0] == "file" else v
    return out


def check(a, b):
    """Compares two tarballs member by member (owners aside); prints one line."""
    import concurrent.futures as cf

    with cf.ProcessPoolExecutor(2) as ex:
        ma, mb = ex.map(members, [a, b])
    diff = sorted(n for n in set(ma) | set(mb) if ma.get(n) != mb.get(n))
    name = os.path.basename(a)
    if diff:
        print(f"check: {name}: {len(diff)} of {len(ma)} members differ, e.g. {diff[:3]}")
        for n in diff[:3]:
            print(f"  {n}: {ma.get(n)} vs {mb.get(n)}")
        return 1
    print(f"check: {name}: the same {len(ma)} members (kind, size, mode, mtime, link target, content) on both sides")
    return 0


def dir_sizes(path, suffix):
    out = {}
    if os.path.isdir(path):
        for name in sorted(os.listdir(path)):
            if name.endswith(suffix):
                out[name] = os.path.getsize(os.path.join(path, name))
    return out


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB RAM"
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), {mem}, {platform.system()} {platform.release()}"


def fmt(x, digits=1):
    return f"{x:,.{digits}f}"


def stages(cpu):
    # `serial`: the work that ran one artifact at a time (older binaries:
    # decode and repack were one thread each for the whole run).
    serial = cpu.get("serial", cpu["decode"] + cpu["repack"])
    feeds = f", compress / serial {cpu['compress'] / serial:.0f}" if serial > 0 else ""
    return (
        f"decode {fmt(cpu['decode'], 2)}, repack {fmt(cpu['repack'], 2)}, serial {fmt(serial, 2)}, "
        f"compress {fmt(cpu['compress'], 2)}, checksum {fmt(cpu.get('checksum', 0), 2)}{feeds}"
    )


def report(a):
    rp = json.load(open(a.rockpack))
    pl = json.load(open(a.plain)) if a.plain and os.path.exists(a.plain) else None
    one = json.load(open(a.largest)) if a.largest and os.path.exists(a.largest) else None
    phases = json.load(open(a.phases)) if a.phases and os.path.exists(a.phases) else {}
    summary = json.load(open(a.summary)) if a.summary and os.path.exists(a.summary) else None
    plan = json.load(open(a.plan))
    rp_out = dir_sizes(a.rockpack_out, ".tar.gz")
    pl_out = dir_sizes(a.plain_out, ".tar.gz") if pl else {}
    rp["output_mib"] = sum(rp_out.values()) / MIB
    if pl:
        pl["output_mib"] = sum(pl_out.values()) / MIB
    # At gzip level 9: rockpack --level 9 and TheRock's method.
    rp9 = json.load(open(a.rockpack9)) if a.rockpack9 and os.path.exists(a.rockpack9) else None
    tr = json.load(open(a.therock)) if rp9 and a.therock and os.path.exists(a.therock) else None
    rp9_out = dir_sizes(a.rockpack9_out, ".tar.gz") if tr else {}
    tr_out = dir_sizes(a.therock_out, ".tar.gz") if tr else {}
    tr_phases = json.load(open(a.therock_phases)) if tr and a.therock_phases and os.path.exists(a.therock_phases) else {}
    if tr:
        rp9["output_mib"] = sum(rp9_out.values()) / MIB
        tr["output_mib"] = sum(tr_out.values()) / MIB
    tr_name = "TheRock's method"
    if tr_phases:
        tr_name += (
            f" (zlib-ng level {tr_phases['compress_level']}, {tr_phases['compress_threads']} threads, "
            f"{tr_phases['compress_workers']} tarball{'s' if tr_phases['compress_workers'] > 1 else ''} at a time)"
        )
    if one is not None:
        one["output_mib"] = a.largest_bytes / MIB if a.largest_bytes else 0.0

    # Bytes sent to the S3 server: rockpack's count (`upload.sent_bytes` in
    # --summary; tests/s3_sink.rs checks it against what the server
    # received), and the whole tarballs for the ways that upload each one.
    def sent_mib(path):
        if not path or not os.path.exists(path):
            return None
        upload = json.load(open(path)).get("upload")
        return upload["sent_bytes"] / MIB if upload else None

    rp["sent_mib"] = sent_mib(a.summary)
    if pl:
        pl["sent_mib"] = pl["output_mib"]
    if tr:
        rp9["sent_mib"] = sent_mib(os.path.join(os.path.dirname(a.summary or ""), "summary-9.json"))
        tr["sent_mib"] = tr["output_mib"]

    input_bytes = sum(x["size"] for x in plan["artifacts"])
    ntar = len(plan["tarballs"])
    unique = None
    if summary:
        unique = max(t["content_bytes"] for t in summary["tarballs"])
        total_content = sum(t["content_bytes"] for t in summary["tarballs"])

    lines = []
    w = lines.append
    title = "rockpack vs the plain way" if pl else "rockpack (plain way skipped)"
    if pl and tr:
        title = "rockpack vs the plain way and TheRock's method"
    w(f"### {title}: {a.size_label} of generated input\n")
    w(f"Machine: {machine()}.  ")
    if a.binary and "/debug/" in a.binary:
        w(f"rockpack: `{a.binary}`, a debug build: a check of the script, its times mean nothing.  ")
    families = [f for f in (a.families or "").split(";") if f]
    if families:
        w(f"Families ({len(families)}): {', '.join(families)}.  ")
    w(
        f"Input: {len(plan['artifacts'])} artifacts, {fmt(input_bytes / MIB)} MiB as stored"
        + (f", {fmt(unique / MIB)} MiB of distinct tar data" if unique else "")
        + f"; output: {ntar} tarballs"
        + (f" holding {fmt(total_content / MIB)} MiB of tar data in all" if summary else "")
        + ", gzip level 6"
        + ("; level 9 for rockpack `--level 9` and TheRock's method" if tr else "")
        + ", S3 to S3 on 127.0.0.1.\n"
    )
    w("| | wall s | CPU s | peak RSS MiB | disk written MiB | total output MiB | sent to S3 MiB |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")

    def row(name, r):
        sent = r.get("sent_mib")
        w(
            f"| {name} | {fmt(r['wall_s'])} | {fmt(r['cpu_s'])} | **{fmt(r['peak_rss_mib'])}** | "
            f"{fmt(r['disk_written_mib'])} | {fmt(r['output_mib'])} | "
            f"{fmt(sent) if sent is not None else 'n/a'} |"
        )

    def ratios(name, num, den):
        def ratio(k):
            return f"{num[k] / den[k]:.1f}x" if den[k] > 0.05 else "n/a"

        disk = "n/a (rockpack writes nothing)" if den["disk_written_mib"] < 1 else ratio("disk_written_mib")
        sent = ratio("sent_mib") if num.get("sent_mib") and den.get("sent_mib") else "n/a"
        w(
            f"| {name} | {ratio('wall_s')} | {ratio('cpu_s')} | {ratio('peak_rss_mib')} | "
            f"{disk} | {ratio('output_mib')} | {sent} |"
        )

    row("rockpack", rp)
    if pl:
        row("plain way", pl)
        ratios("plain / rockpack", pl, rp)
    if tr:
        row("rockpack, `--level 9`", rp9)
        row(tr_name, tr)
        ratios("TheRock's method / rockpack `--level 9`", tr, rp9)
    if one is not None:
        row("rockpack, largest tarball alone (`--only multiarch-tests --dest -`)", one)
    if a.over and os.path.exists(a.over):
        over = json.load(open(a.over))
        over["output_mib"] = rp["output_mib"]
        over["sent_mib"] = sent_mib(a.over_summary)
        row("rockpack over a prefix holding other bytes", over)
        ratios("over other bytes / into a fresh prefix", over, rp)
    if a.before and os.path.exists(a.before):
        before = json.load(open(a.before))
        before["output_mib"] = rp["output_mib"]
        row("rockpack, the binary before", before)
        ratios("rockpack / the binary before", rp, before)
    if a.at_once:
        label, path = a.at_once.split("=", 1)
        r = json.load(open(path))
        r["output_mib"] = rp["output_mib"]
        row(f"rockpack, `{label}`", r)
    for b in a.budget:
        size, path = b.split("=", 1)
        r = json.load(open(path))
        r["output_mib"] = rp["output_mib"]
        row(f"rockpack, `--memory {size}`", r)
    w("")
    def sent_and_copied(who, summ):
        up, distinct = summ["upload"], summ["distinct_bytes"]
        into_tarballs = up["copied_bytes"] - up["temporary_bytes"]
        w(
            f"Sent to S3 by {who}: **{fmt(up['sent_bytes'] / MIB)} MiB for {fmt(distinct / MIB)} MiB "
            f"of distinct compressed bytes ({up['sent_bytes'] / distinct:.3f}x)**; copied inside the "
            f"server: {fmt(up['copied_bytes'] / MIB)} MiB (of which into temporary objects "
            f"{fmt(up['temporary_bytes'] / MIB)} MiB: **{up['copied_bytes'] / max(into_tarballs, 1):.3f}x "
            f"the {fmt(into_tarballs / MIB)} MiB copied into the tarballs**)"
            + (
                f"; parts: {up['sent_parts']} sent, {up['copied_parts']} copied, "
                f"{up['temporary_objects']} temporary objects"
                if "sent_parts" in up
                else ""
            )
            + (
                f", and {fmt(up['staged_bytes'] / MIB)} MiB from staging names to final names"
                if "staged_bytes" in up
                else ""
            )
            + (
                f"; final names written within {summ['publish_window']:.2f} s"
                if "publish_window" in summ
                else ""
            )
            + ".  "
        )

    if summary and summary.get("upload") and summary.get("distinct_bytes"):
        sent_and_copied("rockpack", summary)
    if a.before_summary and os.path.exists(a.before_summary):
        sent_and_copied("the binary before", json.load(open(a.before_summary)))
    if a.over_summary and os.path.exists(a.over_summary):
        o = json.load(open(a.over_summary))
        up = o.get("upload") or {}
        w(
            f"Over a prefix holding the same names with other bytes: backed up "
            f"**{fmt(up.get('backed_up_bytes', 0) / MIB)} MiB** inside the server before the "
            f"final burst (the tarballs it replaced), final names written within "
            f"{o.get('publish_window', 0):.2f} s, wall {fmt(o['seconds'])} s.  "
        )
    w(
        f"Peak RSS of rockpack: **{fmt(rp['peak_rss_mib'])} MiB**"
        + (
            f" (plain way: {fmt(pl['peak_rss_mib'])} MiB summed over its processes, "
            f"largest single process {fmt(pl['max_single_rss_mib'])} MiB)."
            if pl
            else "."
        )
        + (
            f"  At level 9: rockpack **{fmt(rp9['peak_rss_mib'])} MiB**, TheRock's method "
            f"{fmt(tr['peak_rss_mib'])} MiB summed over its processes, largest single process "
            f"{fmt(tr['max_single_rss_mib'])} MiB."
            if tr
            else ""
        )
    )

    def by_phase(ph):
        return ", ".join(f"{k.removesuffix('_s')} {fmt(v)} s" for k, v in ph.items() if k.endswith("_s") and k != "total_s")

    if phases:
        w("Plain way by phase: " + by_phase(phases) + ".")
    if tr_phases:
        w(
            f"TheRock's method by phase: {by_phase(tr_phases)} (zlib-ng {tr_phases.get('zlib_ng_version', '?')}, "
            "`tar cf -` of each tree piped into `zlib_ng.gzip_ng_threaded`, largest first)."
        )
    sides = [("rockpack", rp), ("plain way", pl), ("rockpack --level 9", rp9 if tr else None), ("TheRock's method", tr)]
    srv = [
        f"{n} {fmt(r['server_cpu_s'])} s CPU, {fmt(r.get('server_disk_written_mib', 0))} MiB written"
        for n, r in sides
        if r and "server_cpu_s" in r
    ]
    if srv:
        where = f", storage on {a.server_storage}" if a.server_storage else ""
        w(f"The S3 server (s3s-fs{where}; not counted above): " + "; ".join(srv) + ".")
    polled = ", ".join(f"{n} {fmt(r['disk_written_polled_mib'])}" for n, r in sides if r)
    w(
        "Disk written: bytes the process tree dirtied on local storage (ru_oublock; "
        f"/proc/PID/io polled every 50 ms: {polled} MiB)."
    )
    w("")
    outs = [("rockpack", rp_out), ("plain way", pl_out)]
    if tr:
        outs += [("rockpack `--level 9`", rp9_out), ("TheRock's method", tr_out)]
    # S3: the ranges of other objects each tarball is made of (`assembled`
    # in --summary), and the temporary objects that joined short ones.
    assembled = {
        t["file_name"]: t["assembled"]
        for t in (summary or {}).get("tarballs", [])
        if t.get("assembled")
    }
    ranges_head = " copied ranges (temporary objects) |" if assembled else ""
    w("| tarball | " + " | ".join(f"{n} MiB" for n, _ in outs) + " |" + ranges_head)
    w("| --- |" + " ---: |" * len(outs) + (" ---: |" if assembled else ""))

    def mib(o, name):
        return fmt(o[name] / MIB) if name in o else "—"

    def ranges(name):
        if not assembled:
            return ""
        t = assembled.get(name)
        return f" {t['copied_ranges']} ({t['temporary_objects']}) |" if t else " — |"

    names = sorted(set().union(*(o for _, o in outs)))
    for name in names:
        w(f"| {name} | " + " | ".join(mib(o, name) for _, o in outs) + " |" + ranges(name))
    if tr:
        w(f"| **total** ({len(names)} tarballs) | " + " | ".join(fmt(sum(o.values()) / MIB) for _, o in outs) + " |")
    w("")
    if tr:
        total = {n: sum(o.values()) for n, o in outs}
        line = "Total output bytes: " + ", ".join(f"{n} {v:,}" for n, v in total.items())
        rp9_total, tr_total = total["rockpack `--level 9`"], total["TheRock's method"]
        if rp9_total:
            line += f"; TheRock's method / rockpack `--level 9`: {tr_total / rp9_total:.3f}x"
        if total["rockpack"] and total["plain way"]:
            line += f", plain way / rockpack: {total['plain way'] / total['rockpack']:.3f}x"
        w(line + ".")
        w("")
    if a.check and os.path.exists(a.check):
        w(open(a.check).read().strip() + "  ")
    if tr and a.therock_check and os.path.exists(a.therock_check):
        text = open(a.therock_check).read().strip().removeprefix("check: ")
        w(f"check at level 9, rockpack `--level 9` against TheRock's method: {text}  ")
    others = [
        f"{n} {fmt(r['others_cpu_s'])} s"
        for n, r in sides[:2] + [("largest alone", one)] + sides[2:]
        if r and "others_cpu_s" in r
    ]
    if others:
        w(
            "CPU used by other processes during each run (interference; the 50 ms "
            "poller itself is part of it): " + ", ".join(others) + ".  "
        )
    stage_runs = [("rockpack (gzip, all tarballs)", summary)]
    if a.at_once_summary and os.path.exists(a.at_once_summary):
        stage_runs.append((f"rockpack `{a.at_once.split('=', 1)[0]}`", json.load(open(a.at_once_summary))))
    if tr and a.summary9 and os.path.exists(a.summary9):
        stage_runs.append(("rockpack `--level 9` (all tarballs)", json.load(open(a.summary9))))
    if a.largest_zst_summary and os.path.exists(a.largest_zst_summary):
        stage_runs.append(("largest tarball as zstd", json.load(open(a.largest_zst_summary))))
    stage_lines = [f"{n}: {stages(r['cpu_seconds'])}" for n, r in stage_runs if r and "cpu_seconds" in r]
    if stage_lines:
        w("")
        w(
            "CPU seconds per stage (`cpu_seconds` of `--summary`); serial is what ran one "
            "artifact at a time, so compress / serial is how many compression threads the run "
            "could keep busy, on a machine with that many cores: " + "; ".join(stage_lines) + "."
        )
    if a.limits and os.path.exists(a.limits) and one is not None:
        lim = json.load(open(a.limits))
        zst = json.load(open(a.largest_zst)) if a.largest_zst and os.path.exists(a.largest_zst) else None
        w("")
        w(
            "Near the limit, on the largest tarball's tar bytes (every artifact once): "
            f"rockpack's codec alone compressing them from memory ({lim['codec_gz']['jobs']} threads), "
            "against rockpack streaming the same tarball S3 → `/dev/null`; sizes against "
            "`gzip -6` and `zstd -3 -T1` of the same tar."
        )
        w("")
        w("| | codec alone s | rockpack s | rockpack / codec | rockpack MiB | reference MiB | rockpack / reference |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")

        def lrow(name, codec, run, rp_bytes, ref_bytes):
            t = codec["seconds"]
            wall = run["wall_s"] if run else float("nan")
            w(
                f"| {name} | {fmt(t)} | {fmt(wall)} | {wall / t:.2f}x | {fmt(rp_bytes / MIB)} | "
                f"{fmt(ref_bytes / MIB)} | {rp_bytes / ref_bytes:.3f}x |"
            )

        lrow("gzip, level 6", lim["codec_gz"], one, lim["rockpack_gz_bytes"], lim["gzip6_bytes"])
        lrow("zstd, level 3", lim["codec_zst"], zst, lim["rockpack_zst_bytes"], lim["zstd3_bytes"])
        w("")
    if a.ranges:
        runs = {}
        for spec in a.ranges:
            c, path = spec.split("=", 1)
            runs.setdefault(int(c), []).append(json.load(open(path)))
        w(
            f"Parallel ranged GETs: the largest tarball as zstd, S3 → `/dev/null`, from a server "
            f"instance whose connections each send at most {a.throttle}/s (as one connection to S3 "
            "gets a fraction of what S3 serves); runs alternated."
        )
        w("")
        w("| `--range-connections` | wall s (each run) | CPU s (each run) | wall vs 1 connection |")
        w("| ---: | ---: | ---: | ---: |")
        base = min(r["wall_s"] for r in runs.get(1, [{"wall_s": float("nan")}]))
        for c, rs in sorted(runs.items()):
            walls = ", ".join(fmt(r["wall_s"]) for r in rs)
            cpus = ", ".join(fmt(r["cpu_s"]) for r in rs)
            best = min(r["wall_s"] for r in rs)
            w(f"| {c} | {walls} | {cpus} | {best / base:.2f}x |")
        w("")
    w(f"Reproduce: `{a.command}`")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    if pl and set(rp_out) != set(pl_out):
        print("warning: the two sides produced different tarball names", file=sys.stderr)
    if tr and not set(rp_out) == set(rp9_out) == set(tr_out):
        print("warning: the level-9 sides produced different tarball names", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("size")
    s.add_argument("text")
    s = sub.add_parser("check")
    s.add_argument("a")
    s.add_argument("b")
    s = sub.add_parser("seed")
    s.add_argument("root")
    s.add_argument("bucket")
    s.add_argument("prefix")
    s = sub.add_parser("targets")
    s.add_argument("families")
    s.add_argument("--table", required=True)
    r = sub.add_parser("report")
    for k in ("rockpack", "plan", "rockpack-out", "size-label", "command"):
        r.add_argument(f"--{k}", required=True)
    r.add_argument("--plain")
    r.add_argument("--plain-out")
    r.add_argument("--largest")
    r.add_argument("--largest-bytes", type=int, default=0)
    r.add_argument("--largest-zst")
    r.add_argument("--limits")
    r.add_argument("--budget", action="append", default=[], help="SIZE=measure.json of a --memory run")
    r.add_argument("--before", help="measure.json of the binary before, same command")
    r.add_argument("--before-summary", help="its --summary")
    r.add_argument("--over", help="measure.json of a run over a prefix holding other bytes")
    r.add_argument("--over-summary", help="its --summary")
    r.add_argument("--at-once", help="FLAGS=measure.json of a run with several artifacts at once")
    r.add_argument("--at-once-summary", help="its --summary")
    r.add_argument("--ranges", action="append", default=[], help="N=measure.json of a --range-connections N run")
    r.add_argument("--throttle", default="")
    r.add_argument("--phases")
    r.add_argument("--summary")
    r.add_argument("--largest-zst-summary")
    r.add_argument("--server-storage")
    r.add_argument("--check", help="a file with the output of the check command")
    r.add_argument("--rockpack9", help="measure.json of rockpack --level 9")
    r.add_argument("--rockpack9-out")
    r.add_argument("--summary9", help="--summary of rockpack --level 9")
    r.add_argument("--therock", help="measure.json of bench/therock_way.py")
    r.add_argument("--therock-out")
    r.add_argument("--therock-phases")
    r.add_argument("--therock-check", help="the check of rockpack --level 9 against TheRock's method")
    r.add_argument("--families", help="the families packed, ';'-separated")
    r.add_argument("--binary", help="the rockpack binary measured")
    r.add_argument("--out")
    a = ap.parse_args()
    if a.cmd == "size":
        print(parse_size(a.text))
    elif a.cmd == "check":
        sys.exit(check(a.a, a.b))
    elif a.cmd == "seed":
        seed(a.root, a.bucket, a.prefix)
    elif a.cmd == "targets":
        targets(a.families, a.table)
    else:
        report(a)


if __name__ == "__main__":
    main()
