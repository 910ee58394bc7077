#!/usr/bin/env python3
"""The plain way, as TheRock's build_tools/build_tarballs.py did it (TheRock
89553ce, 2026-08-22; its successor is bench/therock_way.py), for the
end-to-end benchmark (bench/e2e.sh):

1. download every selected artifact once into a shared download cache
   (parallel GETs, like artifact_manager.py's download pool);
2. for each tarball in turn, fetch --flatten: extract each of its artifacts
   with GNU tar (`tar --zstd -x` / `tar -xJ`, a few in parallel) into the
   tarball's own directory, stripping the artifact_manifest.txt prefixes
   (tar --transform), as ArtifactPopulator(flatten=True) does;
3. `tar czf` every tarball directory at once, one process per tarball
   (build_tarballs.py's ProcessPoolExecutor running `tar cfz`);
4. upload every tarball (multipart in 8 MiB parts, as `aws s3 cp` does; a
   few at once) with a .sha256sum sidecar.

Which artifacts go into which tarball comes from `rockpack plan --json`
(the selection itself is not what is measured). Talks to the benchmark's
S3 server anonymously (it runs with --anonymous): plain HTTP GET and PUT,
standard library only. Prints the time of each phase, and writes them as
JSON with --phases.

bench/therock_way.py reuses steps 1, 2 and 4 (add_args, run) and brings its
own step 3.
"""

import argparse
import concurrent.futures as cf
import hashlib
import http.client
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import urllib.parse

CHUNK = 1 << 20
# aws s3 cp's defaults: multipart threshold and part size 8 MB, up to 10
# requests at once (here 4 parts per file, times --transfers files).
MULTIPART = 8 << 20
PART_THREADS = 4


def log(msg, who="plain"):
    print(f"{who}: {msg}", file=sys.stderr, flush=True)


class S3:
    def __init__(self, endpoint, bucket):
        u = urllib.parse.urlsplit(endpoint)
        self.host, self.port = u.hostname, u.port or 80
        self.bucket = bucket

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=600, blocksize=CHUNK)

    def path(self, key):
        return f"/{self.bucket}/{urllib.parse.quote(key)}"

    def get(self, key, dest):
        c = self.conn()
        c.request("GET", self.path(key))
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"GET {key}: {r.status} {r.read()[:300]!r}")
        with open(dest, "wb") as f:
            while True:
                b = r.read(CHUNK)
                if not b:
                    break
                f.write(b)
        c.close()

    def request(self, method, target, body=None, headers=None, ok=(200,)):
        c = self.conn()
        c.request(method, target, body=body, headers=headers or {})
        r = c.getresponse()
        text = r.read()
        c.close()
        if r.status not in ok:
            raise RuntimeError(f"{method} {target}: {r.status} {text[:300]!r}")
        return r, text

    def put_file(self, key, path):
        """Uploads a file as `aws s3 cp` does: multipart in 8 MiB parts,
        several at once, above 8 MiB; returns its sha256 hex."""
        size = os.path.getsize(path)
        if size < MULTIPART:
            return self.put_small(key, path)
        target = self.path(key)
        _, text = self.request("POST", target + "?uploads", headers={"Content-Type": "application/gzip"})
        upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", text).group(1).decode()
        q = f"uploadId={urllib.parse.quote(upload_id)}"

        def part(n):
            with open(path, "rb") as f:
                f.seek((n - 1) * MULTIPART)
                data = f.read(MULTIPART)
            r, _ = self.request("PUT", f"{target}?partNumber={n}&{q}", body=data,
                                headers={"Content-Length": str(len(data))})
            return r.getheader("ETag")

        parts = range(1, (size + MULTIPART - 1) // MULTIPART + 1)
        with cf.ThreadPoolExecutor(PART_THREADS) as ex:
            etags = ex.map(part, parts)
            # The sidecar's digest, read beside the uploads.
            sha = hashlib.sha256()
            with open(path, "rb") as f:
                for b in iter(lambda: f.read(CHUNK), b""):
                    sha.update(b)
            etags = list(etags)
        xml = "<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in zip(parts, etags)
        ) + "</CompleteMultipartUpload>"
        self.request("POST", f"{target}?{q}", body=xml.encode())
        return sha.hexdigest()

    def put_small(self, key, path):
        """PUTs a file, hashing it on the way; returns the sha256 hex."""
        size = os.path.getsize(path)
        sha = hashlib.sha256()

        def body():
            with open(path, "rb") as f:
                while True:
                    b = f.read(CHUNK)
                    if not b:
                        return
                    sha.update(b)
                    yield b

        c = self.conn()
        c.request(
            "PUT",
            self.path(key),
            body=body(),
            headers={"Content-Length": str(size), "Content-Type": "application/gzip"},
        )
        r = c.getresponse()
        text = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"PUT {key}: {r.status} {text[:300]!r}")
        return sha.hexdigest()

    def put_bytes(self, key, data):
        c = self.conn()
        c.request("PUT", self.path(key), body=data, headers={"Content-Length": str(len(data))})
        r = c.getresponse()
        text = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"PUT {key}: {r.status} {text[:300]!r}")


def tar_flag(file_name):
    return "--zstd" if file_name.endswith(".zst") else "--xz"


def manifest_prefixes(archive):
    """The path prefixes listed in the archive's first member
    (artifact_manifest.txt), from the first MiB of the decoded stream."""
    tool = "zstd" if archive.endswith(".zst") else "xz"
    p = subprocess.Popen([tool, "-dc", archive], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    head = p.stdout.read(1 << 20)
    p.kill()
    p.wait()
    with tarfile.open(fileobj=io.BytesIO(head), mode="r:") as tf:
        first = tf.next()
        if first is None or first.name != "artifact_manifest.txt":
            raise RuntimeError(f"{archive}: artifact_manifest.txt is not the first member")
        text = tf.extractfile(first).read().decode()
    return [p.strip().strip("/") for p in text.splitlines() if p.strip()]


def bre_escape(s):
    return "".join("\\" + ch if ch in ".[]*^$\\" else ch for ch in s)


def flatten_into(archive, prefixes, dest):
    """Extracts the members under `prefixes` into dest, prefixes stripped."""
    cmd = ["tar", tar_flag(archive), "-x", "-p", "-f", archive, "-C", dest]
    for p in prefixes:
        # '|' as delimiter; S: leave symlink targets alone (they are
        # relative), hardlink targets are rewritten like names.
        cmd.append(f"--transform=s|^{bre_escape(p)}/||S")
    cmd += ["--anchored", "--exclude=artifact_manifest.txt"]
    subprocess.run(cmd, check=True)


def add_args(ap):
    """The arguments every way of building the tarballs takes (the plain
    way's, and bench/therock_way.py's)."""
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", required=True, help="the run's key prefix, e.g. run")
    ap.add_argument("--plan", required=True, help="rockpack plan --json output")
    ap.add_argument("--work", required=True, help="a scratch directory on local disk")
    ap.add_argument("--dest-prefix", required=True, help="key prefix for the tarballs")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--transfers", type=int, default=4)
    ap.add_argument("--phases", help="write phase timings here (JSON)")


def tar_czf(tarballs, outdir):
    """3. `tar czf`, one process per tarball, all at once."""
    procs = [
        subprocess.Popen(["tar", "czf", os.path.join(outdir, name), "."], cwd=tree)
        for name, tree in tarballs
    ]
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"plain: tar czf failed ({p.returncode})")
    return {}


def run(args, compress, who="plain"):
    """Downloads, flattens, compresses with compress(tarballs, outdir) --
    tarballs: (file name, flattened tree) in plan order; returns extra
    entries for the phases JSON -- and uploads. Logs and writes the time of
    each phase."""
    plan = json.load(open(args.plan))
    s3 = S3(args.endpoint, args.bucket)
    prefix = args.prefix.strip("/")
    cache = os.path.join(args.work, "download-cache")
    trees = os.path.join(args.work, "trees")
    outdir = os.path.join(args.work, "tarballs")
    for d in (cache, trees, outdir):
        os.makedirs(d, exist_ok=True)
    phases = {}
    t0 = time.monotonic()

    # 1. Download each artifact once.
    artifacts = plan["artifacts"]
    local = [os.path.join(cache, os.path.basename(a["key"])) for a in artifacts]
    with cf.ThreadPoolExecutor(args.transfers) as ex:
        list(ex.map(lambda i: s3.get(f"{prefix}/{artifacts[i]['key']}", local[i]), range(len(artifacts))))
    phases["download_s"] = time.monotonic() - t0
    log(f"downloaded {len(artifacts)} artifacts in {phases['download_s']:.1f} s", who)

    # 2. Fetch --flatten, one tarball after the other; the artifacts of one
    #    tarball extract in parallel.
    t1 = time.monotonic()
    tarballs = []
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        prefixes = list(ex.map(manifest_prefixes, local))
        for t in plan["tarballs"]:
            dest = os.path.join(trees, t["file_name"])
            os.makedirs(dest)
            list(ex.map(lambda i: flatten_into(local[i], prefixes[i], dest), t["artifacts"]))
            tarballs.append((t["file_name"], dest))
    phases["flatten_s"] = time.monotonic() - t1
    log(f"flattened {len(tarballs)} trees in {phases['flatten_s']:.1f} s", who)

    # 3. Compress.
    t2 = time.monotonic()
    extra = compress(tarballs, outdir)
    phases["compress_s"] = time.monotonic() - t2
    log(f"compressed {len(tarballs)} tarballs in {phases['compress_s']:.1f} s", who)

    # 4. Upload with a sha256 sidecar.
    t3 = time.monotonic()
    dest_prefix = args.dest_prefix.strip("/")

    def upload(t):
        name = t["file_name"]
        sha = s3.put_file(f"{dest_prefix}/{name}", os.path.join(outdir, name))
        s3.put_bytes(f"{dest_prefix}/{name}.sha256sum", f"{sha}  {name}\n".encode())

    with cf.ThreadPoolExecutor(args.transfers) as ex:
        list(ex.map(upload, plan["tarballs"]))
    phases["upload_s"] = time.monotonic() - t3
    phases["total_s"] = time.monotonic() - t0
    log(f"uploaded in {phases['upload_s']:.1f} s; total {phases['total_s']:.1f} s", who)
    if args.phases:
        with open(args.phases, "w") as f:
            json.dump({**phases, **(extra or {})}, f, indent=2)


def main():
    ap = argparse.ArgumentParser()
    add_args(ap)
    run(ap.parse_args(), tar_czf)


if __name__ == "__main__":
    main()
