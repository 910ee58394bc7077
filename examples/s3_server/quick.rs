//! s3s-fs with its two byte-moving multipart calls done its own way.
//!
//! s3s-fs copies a part (UploadPartCopy) through 4 KiB reads of tokio's
//! file type, one blocking-pool task per read, writes every copied byte
//! again, and completes an upload through 64 KiB ones: on two cores a
//! release-size benchmark's server then falls minutes behind the client it
//! is measuring, and its disk holds every copied byte twice more. [`Quick`]
//! keeps s3s-fs's files and answers, and every other call is s3s-fs's own,
//! but:
//!
//! - a copied part is a reference: the source object's file is hard-linked
//!   as a snapshot of the upload (objects are replaced by rename, never
//!   written in place, so the link keeps the bytes the copy saw), and the
//!   part records its range and MD5 (read once, on a blocking thread);
//! - a complete whose parts are one snapshot whole, in order, links it as
//!   the object (as S3 may share the bytes); otherwise the parts are joined
//!   with 1 MiB buffers on a blocking thread, each removed once joined.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use s3s::crypto::{Checksum as _, Md5};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use s3s_fs::FileSystem;

/// Bytes read and written at a time.
const BUF: usize = 1 << 20;

/// S3's smallest part but the last.
const MIN_PART: u64 = 5 << 20;

/// s3s-fs serving `root`, with fast copies and completes.
pub struct Quick {
    fs: FileSystem,
    root: PathBuf,
    tmp_counter: AtomicU64,
}

impl Quick {
    /// Serves `root` (s3s-fs's layout; the directory must exist).
    pub fn new(root: &Path) -> std::io::Result<Self> {
        let fs = FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        Ok(Quick {
            fs,
            root: std::env::current_dir()?.join(root).canonicalize()?,
            tmp_counter: AtomicU64::new(0),
        })
    }

    /// A file of the root's own (upload records, parts, temporaries): `name`
    /// is made here from checked parts only.
    fn internal(&self, name: String) -> PathBuf {
        self.root.join(name)
    }

    /// A temporary file s3s-fs removes on start if a crash left it.
    fn tmp_path(&self) -> PathBuf {
        let n = self.tmp_counter.fetch_add(1, Ordering::SeqCst);
        self.internal(format!(
            ".tmp.quick-{}-{n}.internal.part",
            std::process::id()
        ))
    }

    /// Where s3s-fs keeps object `key` of `bucket`: refused if it would
    /// leave the bucket.
    fn object_path(&self, bucket: &str, key: &str) -> S3Result<PathBuf> {
        let plain = |s: &str| {
            !s.is_empty()
                && Path::new(s)
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)))
        };
        if !plain(bucket) || bucket.contains('/') || !plain(key) {
            return Err(s3_error!(InvalidArgument, "bucket or key leaves the root"));
        }
        Ok(self.root.join(bucket).join(key))
    }

    /// s3s-fs's record of object `key`'s ETag (and checksums).
    fn info_path(&self, bucket: &str, key: &str) -> PathBuf {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        self.internal(format!(
            ".bucket-{}.object-{}.internal.json",
            b64(bucket),
            b64(key)
        ))
    }

    /// The upload's id, checked as s3s-fs does (made by it, by the same
    /// access key).
    fn check_upload(&self, upload_id: &str, cred: Option<&s3s::auth::Credentials>) -> S3Result<()> {
        if !is_upload_id(upload_id) {
            return Err(s3_error!(InvalidRequest));
        }
        let record = self.internal(format!(".upload-{upload_id}.json"));
        let owner: Option<String> = std::fs::read(&record)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| s3_error!(NoSuchUpload))?;
        if owner.as_deref() != cred.map(|c| c.access_key.as_str()) {
            return Err(s3_error!(AccessDenied));
        }
        Ok(())
    }

    /// The ETag s3s-fs recorded for object `key`, if it did.
    fn recorded_etag(&self, bucket: &str, key: &str) -> Option<String> {
        let info: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(self.info_path(bucket, key)).ok()?).ok()?;
        info.get("e_tag")?.as_str().map(str::to_string)
    }

    /// Part `number` of upload `upload_id`: its files in the root.
    fn upload_files(&self, upload_id: &str, number: i32) -> UploadFiles {
        UploadFiles {
            data: self.internal(format!(".upload_id-{upload_id}.part-{number}")),
            reference: self.internal(format!(".upload_id-{upload_id}.ref-{number}")),
            snapshots: self.internal(format!(".upload_id-{upload_id}.snap-")),
            tmp: self.tmp_path(),
        }
    }
}

/// Copies `len` bytes of `from` (at its position) to `to`, hashing them.
fn copy_hashed(
    from: &mut impl Read,
    to: &mut impl Write,
    len: u64,
    md5: &mut Md5,
) -> std::io::Result<u64> {
    let mut buf = vec![0u8; BUF];
    let mut left = len;
    while left > 0 {
        let want = (left as usize).min(BUF);
        let n = from.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        to.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(len - left)
}

/// Whether `id` has the form of s3s-fs's upload ids (a UUID): safe in a
/// file name.
fn is_upload_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A blocking job's failure as S3's InternalError.
fn internal(e: impl std::fmt::Display) -> s3s::S3Error {
    s3_error!(InternalError, "{e}")
}

/// `bytes=A-B` (B may be empty: to the end) within a file of `len` bytes,
/// as (start, length).
fn copy_range(range: Option<&str>, len: u64) -> S3Result<(u64, u64)> {
    let Some(range) = range else {
        return Ok((0, len));
    };
    let spec = range
        .strip_prefix("bytes=")
        .ok_or_else(|| s3_error!(InvalidArgument))?;
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| s3_error!(InvalidArgument))?;
    let start: u64 = a.parse().map_err(|_| s3_error!(InvalidArgument))?;
    let end = if b.is_empty() {
        len.saturating_sub(1)
    } else {
        b.parse().map_err(|_| s3_error!(InvalidArgument))?
    };
    if start > end || start >= len || end >= len {
        return Err(s3_error!(InvalidRange));
    }
    Ok((start, end - start + 1))
}

/// One part number's files of an upload: the bytes sent (s3s-fs's part
/// file) or a reference to a copied range; snapshots beside them.
struct UploadFiles {
    data: PathBuf,
    reference: PathBuf,
    /// `.upload_id-{id}.snap-` in the root: a snapshot's name is this and
    /// its source file's inode.
    snapshots: PathBuf,
    tmp: PathBuf,
}

impl UploadFiles {
    fn snapshot(&self, inode: u64) -> PathBuf {
        let mut name = self.snapshots.clone().into_os_string();
        name.push(inode.to_string());
        PathBuf::from(name)
    }
}

/// A copied part: `len` bytes at `start` of a snapshot, and their MD5.
struct Reference {
    snapshot: String,
    start: u64,
    len: u64,
    md5: String,
}

impl Reference {
    fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.snapshot, self.start, self.len, self.md5
        )
    }

    fn parse(text: &str) -> Option<Reference> {
        let mut f = text.split_whitespace();
        Some(Reference {
            snapshot: f.next()?.to_string(),
            start: f.next()?.parse().ok()?,
            len: f.next()?.parse().ok()?,
            md5: f.next()?.to_string(),
        })
    }
}

/// Writes `bytes` to `path` through `tmp` and a rename.
fn write_atomically(path: &Path, bytes: &[u8], tmp: &Path) -> std::io::Result<()> {
    std::fs::write(tmp, bytes)?;
    std::fs::rename(tmp, path)
}

/// Makes `target` of `parts` (through `tmp`), returning each part's MD5:
/// a link to the snapshot when the parts are that snapshot whole, in
/// order; else the parts' bytes joined, each part file removed once
/// joined.
fn join_parts(parts: &[UploadFiles], tmp: &Path, target: &Path) -> S3Result<Vec<[u8; 16]>> {
    enum Piece {
        Data(PathBuf, u64),
        Copied(Reference, PathBuf),
    }
    let mut pieces = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let piece = match std::fs::read_to_string(&p.reference) {
            Ok(text) => {
                let r =
                    Reference::parse(&text).ok_or_else(|| internal("a broken part reference"))?;
                let snap = p.snapshots.with_file_name(&r.snapshot);
                Piece::Copied(r, snap)
            }
            Err(_) => {
                let len = std::fs::metadata(&p.data)
                    .map_err(|_| s3_error!(InvalidPart))?
                    .len();
                Piece::Data(p.data.clone(), len)
            }
        };
        let len = match &piece {
            Piece::Data(_, len) => *len,
            Piece::Copied(r, _) => r.len,
        };
        if i + 1 != parts.len() && len < MIN_PART {
            return Err(s3_error!(EntityTooSmall));
        }
        pieces.push(piece);
    }
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(internal)?;
    }
    // One snapshot whole, in order: the object is that file.
    let whole = match pieces.first() {
        Some(Piece::Copied(_, snap)) => {
            let size = std::fs::metadata(snap).map_err(internal)?.len();
            let mut at = 0;
            let in_order = pieces.iter().all(|p| match p {
                Piece::Copied(r, s) if s == snap && r.start == at => {
                    at += r.len;
                    true
                }
                _ => false,
            });
            (in_order && at == size).then(|| snap.clone())
        }
        _ => None,
    };
    let mut sums = Vec::with_capacity(pieces.len());
    if let Some(snap) = whole {
        for p in &pieces {
            if let Piece::Copied(r, _) = p {
                sums.push(md5_bytes(&r.md5)?);
            }
        }
        std::fs::hard_link(&snap, tmp).map_err(internal)?;
        std::fs::rename(tmp, target).map_err(internal)?;
        return Ok(sums);
    }
    let mut to = std::fs::File::create(tmp).map_err(internal)?;
    for (p, files) in pieces.iter().zip(parts) {
        match p {
            Piece::Data(path, len) => {
                let mut from = std::fs::File::open(path).map_err(internal)?;
                let mut md5 = Md5::new();
                copy_hashed(&mut from, &mut to, *len, &mut md5).map_err(internal)?;
                sums.push(md5.finalize());
                // Gone once joined, as s3s-fs does: the disk holds the
                // parts and the object once, not twice.
                let _ = std::fs::remove_file(path);
            }
            Piece::Copied(r, snap) => {
                let mut from = std::fs::File::open(snap).map_err(internal)?;
                from.seek(SeekFrom::Start(r.start)).map_err(internal)?;
                let n = std::io::copy(&mut (&mut from).take(r.len), &mut to).map_err(internal)?;
                if n != r.len {
                    return Err(internal("a snapshot shorter than its reference"));
                }
                sums.push(md5_bytes(&r.md5)?);
                let _ = std::fs::remove_file(&files.reference);
            }
        }
    }
    std::fs::rename(tmp, target).map_err(internal)?;
    Ok(sums)
}

/// A hex MD5 as its 16 bytes.
fn md5_bytes(hex: &str) -> S3Result<[u8; 16]> {
    let mut out = [0u8; 16];
    if hex.len() != 32 {
        return Err(internal("a broken part MD5"));
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(internal)?;
    }
    Ok(out)
}

/// `impl S3 for Quick`: the calls s3s-fs answers itself (one line each),
/// then Quick's own (written out: async_trait must see them expanded).
macro_rules! quick_s3 {
    (delegate { $($op:ident: $input:ty => $output:ty;)* } $($own:tt)*) => {
        #[async_trait::async_trait]
        impl S3 for Quick {
            $(
                async fn $op(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$op(req).await
                }
            )*
            $($own)*
        }
    };
}

quick_s3! {
    delegate {
        create_bucket: CreateBucketInput => CreateBucketOutput;
        copy_object: CopyObjectInput => CopyObjectOutput;
        delete_bucket: DeleteBucketInput => DeleteBucketOutput;
        delete_object: DeleteObjectInput => DeleteObjectOutput;
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
        get_object: GetObjectInput => GetObjectOutput;
        head_bucket: HeadBucketInput => HeadBucketOutput;
        head_object: HeadObjectInput => HeadObjectOutput;
        list_buckets: ListBucketsInput => ListBucketsOutput;
        list_objects: ListObjectsInput => ListObjectsOutput;
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output;
        put_object: PutObjectInput => PutObjectOutput;
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
        list_parts: ListPartsInput => ListPartsOutput;
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        // A copy made earlier under this number is replaced.
        let files = self.upload_files(&req.input.upload_id, req.input.part_number);
        if is_upload_id(&req.input.upload_id) {
            let _ = std::fs::remove_file(&files.reference);
        }
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        self.check_upload(&input.upload_id, req.credentials.as_ref())?;
        let CopySource::Bucket { bucket, key, .. } = &input.copy_source else {
            return Err(s3_error!(NotImplemented));
        };
        let src = self.object_path(bucket, key)?;
        if let Some(want) = input.copy_source_if_match.as_ref().and_then(|c| c.as_etag()) {
            // s3s-fs ignores the condition; S3 refuses a changed source.
            let known = self.recorded_etag(bucket, key);
            if known.is_some_and(|e| e != want.value()) {
                return Err(s3_error!(PreconditionFailed, "copy source ETag differs"));
            }
        }
        let upload = input.upload_id.clone();
        let number = input.part_number;
        let range = input.copy_source_range.clone();
        let paths = self.upload_files(&upload, number);
        let etag = tokio::task::spawn_blocking(move || -> S3Result<String> {
            let meta = std::fs::metadata(&src).map_err(|_| s3_error!(NoSuchKey))?;
            let (start, count) = copy_range(range.as_deref(), meta.len())?;
            let snap = paths.snapshot(meta.ino());
            if !snap.exists() {
                std::fs::hard_link(&src, &snap).map_err(internal)?;
            }
            let mut from = std::fs::File::open(&snap).map_err(internal)?;
            from.seek(SeekFrom::Start(start)).map_err(internal)?;
            let mut md5 = Md5::new();
            let n = copy_hashed(&mut from, &mut std::io::sink(), count, &mut md5).map_err(internal)?;
            if n != count {
                return Err(internal("source shorter than its size"));
            }
            let etag = hex(&md5.finalize());
            let reference = Reference {
                snapshot: snap.file_name().expect("a file").to_string_lossy().into_owned(),
                start,
                len: count,
                md5: etag.clone(),
            };
            // A part sent earlier under this number is replaced.
            let _ = std::fs::remove_file(&paths.data);
            write_atomically(&paths.reference, reference.line().as_bytes(), &paths.tmp)
                .map_err(internal)?;
            Ok(etag)
        })
        .await
        .map_err(internal)??;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(etag)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let parts: Vec<CompletedPart> = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default();
        if parts.is_empty() {
            return Err(s3_error!(InvalidPart, "You must specify at least one part"));
        }
        self.check_upload(&input.upload_id, req.credentials.as_ref())?;
        let object = self.object_path(&input.bucket, &input.key)?;
        if input.if_none_match.as_ref().is_some_and(|c| c.is_any()) && object.exists() {
            return Err(s3_error!(PreconditionFailed, "Object already exists"));
        }
        if input.if_match.is_some() {
            // Nothing here sends it; s3s-fs's own answer would be needed.
            return Err(s3_error!(NotImplemented, "If-Match on complete"));
        }
        let mut numbers = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let n = p
                .part_number
                .ok_or_else(|| s3_error!(InvalidRequest, "missing part number"))?;
            if n as usize != i + 1 {
                return Err(s3_error!(InvalidRequest, "invalid part order"));
            }
            numbers.push(n);
        }
        let parts: Vec<UploadFiles> = numbers
            .iter()
            .map(|&n| self.upload_files(&input.upload_id, n))
            .collect();
        let tmp = self.tmp_path();
        let target = object.clone();
        let upload_prefix = format!(".upload_id-{}.", input.upload_id);
        let root = self.root.clone();
        let etag = tokio::task::spawn_blocking(move || -> S3Result<String> {
            let joined = join_parts(&parts, &tmp, &target);
            if joined.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            let sums = joined?;
            // The upload's parts, references and snapshots are gone once
            // it is complete.
            if let Ok(dir) = std::fs::read_dir(&root) {
                for e in dir.flatten() {
                    if e.file_name().to_string_lossy().starts_with(&upload_prefix) {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
            let mut all = Md5::new();
            for s in &sums {
                all.update(s);
            }
            Ok(format!("{}-{}", hex(&all.finalize()), sums.len()))
        })
        .await
        .map_err(internal)??;
        let _ = std::fs::remove_file(self.internal(format!(".upload-{}.json", input.upload_id)));
        // The attributes given when the upload was created become the
        // object's, as s3s-fs moves them.
        let meta = |upload: &str| {
            let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
            self.internal(format!(
                ".bucket-{}.object-{}{upload}.metadata.json",
                b64(&input.bucket),
                b64(&input.key)
            ))
        };
        let given = meta(&format!(".upload-{}", input.upload_id));
        if given.exists() {
            std::fs::rename(&given, meta("")).map_err(internal)?;
        }
        // The ETag where s3s-fs's GetObject and HeadObject look for it (they
        // would hash the whole object otherwise), other keys kept as s3s-fs
        // keeps them.
        let info_path = self.info_path(&input.bucket, &input.key);
        let mut info: serde_json::Map<String, serde_json::Value> = std::fs::read(&info_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        info.insert("e_tag".into(), serde_json::Value::String(etag.clone()));
        let tmp = self.tmp_path();
        std::fs::write(&tmp, serde_json::to_vec(&info).map_err(internal)?)
            .and_then(|()| std::fs::rename(&tmp, &info_path))
            .map_err(internal)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(ETag::Strong(etag)),
            ..Default::default()
        }))
    }
}
