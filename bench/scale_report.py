#!/usr/bin/env python3
"""The Markdown report of bench/scale.sh (standard library only).

    scale_report.py --size SIZE --dir PREFIX --s3 PREFIX --tmp-leftovers N \\
        FMT:LEVEL=PREFIX...

Each PREFIX names PREFIX.json (bench/measure.py) and PREFIX-summary.json
(rockpack's --summary).
"""

import argparse
import json

MIB = 1 << 20
GIB = 1 << 30
CORES = (16, 64, 96)
# TheRock's release job (build_tarballs.py on its runner), PR #7670.
THEROCK_JOB_S = 8 * 60 + 53


def load(prefix):
    with open(prefix + ".json") as f:
        m = json.load(f)
    with open(prefix + "-summary.json") as f:
        s = json.load(f)
    return m, s


def digests(s):
    return {t["file_name"]: t["sha256"] for t in s["tarballs"]}


def stages(s):
    c = s["cpu_seconds"]
    return ", ".join(f"{k} {c[k]:.1f}" for k in sorted(c))


def s3_table(w, ss, ds):
    u = ss["upload"]
    distinct = ss["distinct_bytes"]
    copied = u["copied_bytes"]
    def n(key):
        return str(u[key]) if key in u else "–"

    w("| S3 | MiB | parts | ratio |")
    w("| --- | ---: | ---: | --- |")
    w(f"| sent | {u['sent_bytes'] / MIB:.1f} | {n('sent_parts')} | "
      f"{u['sent_bytes'] / distinct:.3f}x the {distinct / MIB:.1f} MiB distinct |")
    w(f"| copied (into the tarballs and temporary objects) | {copied / MIB:.1f} | "
      f"{n('copied_parts')} | |")
    w(f"| of which temporary objects | {u['temporary_bytes'] / MIB:.1f} | "
      f"{n('temporary_objects')} objects | {copied / max(copied - u['temporary_bytes'], 1):.3f}x "
      f"the bytes copied into the tarballs |")
    w(f"| copied from staging names | {u['staged_bytes'] / MIB:.1f} | {n('staged_parts')} | |")
    w(f"| read back | {u['read_back_bytes'] / MIB:.1f} | | |\n")

    same = digests(ds) == digests(ss)
    w(f"Directory and S3 tarballs byte-identical: {'yes' if same else 'NO'}.\n")



def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--s3")
    ap.add_argument("--tmp-leftovers", type=int, required=True)
    ap.add_argument("runs", nargs="*")
    a = ap.parse_args()

    dm, ds = load(a.dir)
    sm, ss = load(a.s3) if a.s3 else (None, None)
    for m in (dm, sm):
        assert m is None or m["exit_code"] == 0, m
    largest = max(t["content_bytes"] for t in ds["tarballs"])
    tar_total = sum(t["content_bytes"] for t in ds["tarballs"])
    out_bytes = sum(t["bytes"] for t in ds["tarballs"])
    out = []
    w = out.append
    w(f"# rockpack at release size ({a.size} of large-file content)\n")
    w(f"{ds['artifacts']} artifacts, {ds['input_bytes'] / GIB:.2f} GiB stored; "
      f"{len(ds['tarballs'])} tarballs, {tar_total / GIB:.2f} GiB of tar in all, "
      f"the largest {largest / GIB:.2f} GiB of tar (it holds every distinct byte); "
      f"{out_bytes / GIB:.2f} GiB of gzip-6 tarballs, "
      f"{ds['distinct_bytes'] / GIB:.2f} GiB distinct.\n")

    w("| run | wall s | CPU s | peak RSS | budget | disk written beyond the tarballs |")
    w("| --- | ---: | ---: | ---: | ---: | ---: |")
    temp_dir = dm["disk_written_mib"] - out_bytes / MIB
    w(f"| directory → directory | {dm['wall_s']:.1f} | {dm['cpu_s']:.1f} | "
      f"{dm['peak_rss_mib']:.0f} MiB | {ds['budget']['memory'] / MIB:.0f} MiB "
      f"({ds['budget']['artifact_jobs']} at once, {ds['budget']['jobs']} threads) | "
      f"{temp_dir:.1f} MiB |")
    if sm:
        w(f"| S3 → S3 (server: {sm['server_cpu_s']:.1f} CPU s) | {sm['wall_s']:.1f} | "
          f"{sm['cpu_s']:.1f} | {sm['peak_rss_mib']:.0f} MiB | "
          f"{ss['budget']['memory'] / MIB:.0f} MiB | {sm['disk_written_mib']:.1f} MiB |")
    w(f"\nFiles left under TMPDIR: {a.tmp_leftovers}. CPU seconds per stage, "
      f"directory run: {stages(ds)}" + (f"; S3 run: {stages(ss)}" if ss else "") + ".\n")
    if ss:
        s3_table(w, ss, ds)
    else:
        w("S3 step skipped (`ROCKPACK_SCALE_S3=0`).\n")

    if a.runs:
        w("As a 64-core runner (`ROCKPACK_CORES=64 --memory 4G`, to a directory):\n")
        w("| codec | at once | compress s | serial s (which chain) | compress / serial | CPU s | "
          "peak RSS | same bytes | " + " | ".join(f"{n} cores" for n in CORES) + " |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |" + " ---: |" * len(CORES))
        for r in a.runs:
            codec, prefix = r.split("=", 1)
            m, s = load(prefix)
            assert m["exit_code"] == 0, m
            c = s["cpu_seconds"]
            same = "yes" if digests(s) == digests(ds) else ("—" if codec != "gz:6" else "NO")
            proj = [max(m["cpu_s"] / n, c["serial"]) for n in CORES]
            # serial is the longest of the chains: say which.
            chain = ("fan-out" if c["serial"] == c["fanout"] else
                     "largest digest" if c["serial"] == c["largest_checksum"] else
                     "largest tarball's writes" if c["serial"] == c.get("largest_write") else
                     "decisions")
            w(f"| {codec} | {s['budget']['artifact_jobs']} | {c['compress']:.1f} | "
              f"{c['serial']:.2f} ({chain}) | {c['compress'] / c['serial']:.0f} | {m['cpu_s']:.1f} | "
              f"{m['peak_rss_mib']:.0f} MiB | {same} | "
              + " | ".join(f"{p:.0f} s" for p in proj) + " |")
        w(f"\nProjected wall = max(CPU s / cores, serial s): the run's measured CPU "
          f"spread over every core, unless the one-at-a-time chain is longer; "
          f"reading and writing assumed to keep up. TheRock's release job: "
          f"{THEROCK_JOB_S} s (PR #7670). `same bytes`: gzip 6 against the "
          f"directory run at this machine's own cores.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
