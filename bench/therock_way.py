#!/usr/bin/env python3
"""TheRock's current method, for the end-to-end benchmark (bench/e2e.sh): what
TheRock's build_tools/packaging/archives/build_tarballs.py does (TheRock
00edba1; it replaced build_tools/build_tarballs.py, which bench/plain_way.py
follows), written anew here:

1. download, 2. fetch --flatten each tarball's tree to its own directory and
4. upload: as bench/plain_way.py does them (its add_args and run);
3. stream each tree as `tar cf -` (GNU tar) into zlib-ng's threaded gzip
   writer (zlib_ng.gzip_ng_threaded.open(path, "wb", compresslevel=9,
   threads=8)), a pool of workers compressing several tarballs at once, the
   largest (by input bytes) first.

Members are in the order tar reads the directories, as plain_way's
`tar czf` and TheRock's `tar cf - .` have them (no --sort). Unlike TheRock,
the tar headers name owner and group 0 (--owner=0 --group=0
--numeric-owner): only header fields change, not the work.

Needs the zlib-ng package: bench/e2e.sh installs it in a throwaway venv and
runs this script with that venv's python.
"""

import argparse
import concurrent.futures as cf
import os
import shutil
import stat
import subprocess
import sys
import time
from importlib.metadata import version

from zlib_ng import gzip_ng_threaded

sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree
import plain_way  # noqa: E402

TAR = ["tar", "--create", "--file=-", "--owner=0", "--group=0", "--numeric-owner", "."]


def tree_bytes(root):
    """Bytes of file content under root (each inode once): what tar reads."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def compress_one(tree, path, level, threads):
    """`tar cf -` of tree, piped into zlib-ng's threaded gzip writer at
    path; returns the seconds it took."""
    t0 = time.monotonic()
    tar = subprocess.Popen(TAR, cwd=tree, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    try:
        with tar.stdout, gzip_ng_threaded.open(path, "wb", compresslevel=level, threads=threads) as gz:
            shutil.copyfileobj(tar.stdout, gz, 1 << 20)
        if tar.wait() != 0:
            raise subprocess.CalledProcessError(tar.returncode, TAR)
    except BaseException:
        if tar.poll() is None:
            tar.kill()
        tar.wait()
        raise
    return time.monotonic() - t0


def default_workers(threads):
    """How many tarballs compress at once. As TheRock does: as many as the
    CPUs hold a tarball's compression threads plus its tar process,
    max(1, cpus // (threads + 1)). The method is what is measured, so its
    own rule, not a tuned one: on 2 cores that is 1 (8 threads already ask
    for four times the CPUs there are; a second tarball at once would only
    share them), on a 96-core runner 10. --workers overrides it."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, cpus // (threads + 1))


def main():
    ap = argparse.ArgumentParser()
    plain_way.add_args(ap)
    ap.add_argument("--level", type=int, default=9, choices=range(10), help="gzip level (TheRock: 9)")
    ap.add_argument("--threads", type=int, default=8, help="compression threads per tarball (TheRock: 8)")
    ap.add_argument("--workers", type=int, help="tarballs at once (default: as TheRock, see default_workers)")
    args = ap.parse_args()
    workers = args.workers or default_workers(args.threads)

    def compress(tarballs, outdir):
        # Largest first, so that the last tarball to finish is a small one.
        # TheRock orders by kind (multiarch-tests, multiarch, family-tests,
        # family), which is the same order by size for these layouts; here
        # by the bytes tar will read.
        sized = sorted(((tree_bytes(tree), name, tree) for name, tree in tarballs), reverse=True)
        plain_way.log(
            f"compressing {len(sized)} tarballs, {workers} at a time, zlib-ng level "
            f"{args.level} with {args.threads} threads each, largest first",
            "therock",
        )
        with cf.ProcessPoolExecutor(workers) as ex:
            futures = {
                ex.submit(compress_one, tree, os.path.join(outdir, name), args.level, args.threads): name
                for _, name, tree in sized
            }
            for f in cf.as_completed(futures):
                name = futures[f]
                size = os.path.getsize(os.path.join(outdir, name))
                plain_way.log(f"{name}: {size / (1 << 20):.1f} MiB in {f.result():.1f} s", "therock")
        return {
            "compress_level": args.level,
            "compress_threads": args.threads,
            "compress_workers": workers,
            "zlib_ng_version": version("zlib-ng"),
        }

    plain_way.run(args, compress, who="therock")


if __name__ == "__main__":
    sys.exit(main())
