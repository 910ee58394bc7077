//! Where tarballs go. A sink creates one writer per tarball; a writer takes
//! compressed chunks in order and is then finished, published or aborted.
//! Publication happens only after every tarball of the run is finished, so
//! a failed run publishes nothing. Chunks say where an earlier tarball
//! holds the same bytes ([`Origin`]): the S3 sink copies those inside S3
//! instead of sending them again; the others write them as they come.

pub mod dir;
#[cfg(feature = "net")]
pub mod s3;
pub mod stdout;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::object_crc::ObjectCrc;
pub use crate::object_crc::StoredChecksum;
use crate::plan::TarballPlan;

/// Compressed bytes on their way into one tarball.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// The bytes (the same `Bytes` go to every tarball that holds them).
    pub bytes: Bytes,
    /// Their CRCs.
    pub crc: ObjectCrc,
    /// Where earlier tarballs of the run hold the same bytes: a sink that
    /// can copy inside its store need not send them.
    pub held: Holders,
}

impl Chunk {
    /// Bytes no earlier tarball holds.
    pub fn own(bytes: Bytes) -> Chunk {
        Chunk {
            crc: ObjectCrc::of(&bytes),
            bytes,
            held: Holders::default(),
        }
    }
}

/// The same bytes in another tarball of the run: the tarball's index in
/// the plan and their offset in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The tarball's index in the plan.
    pub tarball: usize,
    /// Where the bytes start in it.
    pub offset: u64,
}

/// The tarballs that hold a chunk and are published before the tarball
/// it goes to (ranked earlier by [`crate::plan::Plan::upload_order`]),
/// best ranked first. One list is shared by every tarball that gets the
/// chunk, each seeing the part ranked before it.
#[derive(Clone, Debug, Default)]
pub struct Holders {
    all: std::sync::Arc<[Origin]>,
    len: usize,
}

impl Holders {
    /// The first `len` of `all`.
    pub fn new(all: std::sync::Arc<[Origin]>, len: usize) -> Holders {
        assert!(len <= all.len());
        Holders { all, len }
    }

    /// Held by `origin` alone.
    pub fn only(origin: Origin) -> Holders {
        Holders::new(std::sync::Arc::new([origin]), 1)
    }

    /// Whether no earlier tarball holds the bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The holders, best ranked first.
    pub fn iter(&self) -> impl Iterator<Item = &Origin> + '_ {
        self.all[..self.len].iter()
    }

    /// Whether `tarball` holds the bytes at `offset`.
    pub fn at(&self, tarball: usize, offset: u64) -> bool {
        self.iter()
            .any(|o| o.tarball == tarball && o.offset == offset)
    }

    /// The same holders for the bytes `n` further on.
    pub fn skip(&self, n: u64) -> Holders {
        let moved: Vec<Origin> = self
            .iter()
            .map(|o| Origin {
                tarball: o.tarball,
                offset: o.offset + n,
            })
            .collect();
        let len = moved.len();
        Holders::new(moved.into(), len)
    }
}

/// What a sink sent to its store and what the store copied itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UploadStats {
    /// Whether the store copied ranges of earlier objects (UploadPartCopy).
    pub server_copy: bool,
    /// Bytes of parts sent (once each; retries not counted).
    pub sent_bytes: u64,
    /// Bytes the store copied from objects of the run.
    pub copied_bytes: u64,
    /// Bytes read back from the store to send again (a copy it refused).
    pub read_back_bytes: u64,
    /// Bytes the store copied into temporary objects (short runs joined
    /// to the range before them; deleted before the run ends).
    pub temporary_bytes: u64,
    /// Bytes the store copied from staging objects to final names (the
    /// tarballs others copy from wait under a staging name until the set
    /// is published).
    pub staged_bytes: u64,
    /// Bytes the store copied aside before the final burst: what the
    /// run's final names replace, kept until the set is sealed so that a
    /// run killed during the burst can be taken back.
    pub backed_up_bytes: u64,
    /// Parts sent (read-back parts included).
    pub sent_parts: u64,
    /// Parts the store copied from objects of the run into tarballs and
    /// temporary objects.
    pub copied_parts: u64,
    /// Parts the store copied from staging objects to final names.
    pub staged_parts: u64,
    /// Temporary objects made (each joins short runs to the range before).
    pub temporary_objects: u64,
}

/// A destination for a run's tarballs.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Where the tarballs go, for messages.
    fn describe(&self) -> String;

    /// Starts tarball `index` of the plan: its name, format, sidecar and
    /// size bound are the plan's; `origin` says whether later tarballs of
    /// the run copy bytes from it ([`crate::plan::Plan::copy_origins`]).
    async fn create(
        &self,
        index: usize,
        tarball: &TarballPlan,
        origin: bool,
    ) -> Result<Box<dyn TarballWriter>>;

    /// Before the first tarball is created: the run makes the set `set_id`
    /// ([`set_id`]). A sink that keeps a journal takes back an earlier
    /// run of the same set that was killed while publishing, before it
    /// looks at what its keys hold.
    async fn begin(&self, _set_id: &str) -> Result<()> {
        Ok(())
    }

    /// Every tarball is prepared and the final burst is next: a sink whose
    /// burst cannot be cut short safely writes down what the burst
    /// changes and keeps a copy of what it replaces first, so that a run
    /// killed during it can be taken back.
    async fn protect(&self) -> Result<()> {
        Ok(())
    }

    /// What was sent and copied, for a sink that uploads.
    fn upload_stats(&self) -> Option<UploadStats> {
        None
    }

    /// After every writer was aborted: removes what a `create` cut short
    /// (by a signal) may still have started. Nothing, for a sink whose
    /// `create` leaves nothing behind unfinished.
    async fn abort_rest(&self) {}

    /// After every tarball is published: writes the record that says the
    /// set is complete (last, so a reader that finds it finds the whole
    /// set), and removes what the run kept only until then. Nothing, for a
    /// sink without readers to tell.
    async fn seal(&self, _record: &SetRecord) -> Result<()> {
        Ok(())
    }
}

/// What a published set holds, written last beside it: a reader (and
/// `promote`) that finds it knows the set is whole, and can check each
/// tarball against it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SetRecord {
    /// The record's format (1).
    pub record: u32,
    /// `rockpack X.Y.Z`.
    pub writer: String,
    /// Every tarball of the set, sorted by name.
    pub tarballs: Vec<RecordedTarball>,
}

impl SetRecord {
    /// The record of `tarballs`.
    pub fn of(tarballs: impl IntoIterator<Item = RecordedTarball>) -> SetRecord {
        let mut tarballs: Vec<RecordedTarball> = tarballs.into_iter().collect();
        tarballs.sort_by(|a, b| a.name.cmp(&b.name));
        SetRecord {
            record: 1,
            writer: format!("rockpack {}", env!("CARGO_PKG_VERSION")),
            tarballs,
        }
    }

    /// `rockpack-set.{id}.json`: one name per set of tarball names, so a
    /// re-run of the same pack replaces its own record and CI jobs that
    /// each pack part of a release into one prefix keep theirs apart.
    pub fn file_name(&self) -> String {
        record_name(&set_id(self.tarballs.iter().map(|t| t.name.as_str())))
    }
}

/// The id of the set of tarballs named `names`: 12 hex digits of the
/// SHA-256 of the names, sorted, one per line.
pub fn set_id<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    use sha2::Digest;
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    let mut h = sha2::Sha256::new();
    for name in names {
        h.update(name.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())[..12].to_string()
}

/// The name of set `id`'s record: `rockpack-set.{id}.json`.
pub fn record_name(id: &str) -> String {
    format!("{RECORD_PREFIX}{id}.json")
}

/// Set records are named `rockpack-set.{id}.json`.
pub const RECORD_PREFIX: &str = "rockpack-set.";

/// One tarball of a [`SetRecord`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct RecordedTarball {
    /// Its file name in the prefix.
    pub name: String,
    /// Its size.
    pub bytes: u64,
    /// Hex SHA-256 of its bytes.
    pub sha256: String,
    /// Its checksum file's name, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<String>,
    /// The checksum the store keeps of it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<StoredChecksum>,
}

/// One tarball on its way into a sink.
#[async_trait]
pub trait TarballWriter: Send {
    /// Appends the next compressed bytes.
    async fn write(&mut self, chunk: Chunk) -> Result<()>;

    /// Whether it can give back bytes it was written ([`read_back`]).
    ///
    /// [`read_back`]: TarballWriter::read_back
    fn can_read_back(&self) -> bool {
        false
    }

    /// `len` of the bytes written so far, from `offset` on: a ZIP archive
    /// stores a link as the file it leads to, repeating that file's bytes.
    /// Called only once the run's other tarballs are being prepared (an
    /// upload may first need the tarballs it copies from); the bytes
    /// written after it may say that this tarball holds them.
    async fn read_back(&mut self, _offset: u64, _len: usize) -> Result<Bytes> {
        Err(crate::error::Error::internal(format!(
            "{}: this destination cannot read back what it was written",
            self.location()
        )))
    }

    /// All bytes are written: make them durable, not yet visible.
    async fn finish(&mut self) -> Result<()>;

    /// Every tarball is finished: do all that may take long or fail before
    /// the final name (server-side copies, staging), still invisible.
    async fn prepare(&mut self) -> Result<()> {
        Ok(())
    }

    /// Makes the tarball visible under its final name, then its sidecar
    /// (the plan's, if it has one): quick, as every tarball of the run
    /// does this at once, after every one is prepared.
    async fn publish(&mut self, sha256_hex: &str) -> Result<()>;

    /// Discards everything; never fails (best effort, logged).
    async fn abort(&mut self);

    /// Where it ended up, for the summary.
    fn location(&self) -> String;

    /// The checksum the store keeps of it, once published.
    fn checksum(&self) -> Option<StoredChecksum> {
        None
    }

    /// How its bytes reached a store that copies inside itself, once
    /// prepared; `None` for a sink that writes every byte.
    fn assembled(&self) -> Option<Assembled> {
        None
    }

    /// CPU nanoseconds it spent writing on threads of its own (not in
    /// `write`'s caller), once finished: one tarball's writes run one
    /// after the other, a chain of the run's serial work.
    fn write_cpu_ns(&self) -> u64 {
        0
    }
}

/// How one tarball's bytes reached a store that copies: sent, or copied
/// from ranges of the run's other objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Assembled {
    /// Bytes sent for it.
    pub sent_bytes: u64,
    /// Bytes the store copied into it.
    pub copied_bytes: u64,
    /// Runs of its bytes that earlier tarballs hold contiguously: the
    /// ranges it is made of (each copied, or sent when short).
    pub copied_ranges: u64,
    /// Temporary objects that joined short runs.
    pub temporary_objects: u64,
}

/// `<hex>  <name>\n`, as sha256sum writes it.
pub fn sidecar_text(sha256_hex: &str, file_name: &str) -> String {
    format!("{sha256_hex}  {file_name}\n")
}
