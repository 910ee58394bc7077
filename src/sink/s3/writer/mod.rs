//! One tarball's multipart upload, as a state machine: writing (chunks cut
//! into parts by [`super::assembly`], parts to send handed to
//! [`super::part`] as they close), finished (every part to send uploaded),
//! published (the tarballs it copies from published; its temporary
//! objects made, chains of them at once, while its ranges of those
//! tarballs are copied by [`super::copy`]; then its ranges of the
//! temporary objects; the upload completed, then its sidecar put), or
//! aborted (nothing of it left).

mod complete;
mod copies;
mod late;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::types::CompletedPart;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::assembly::{Assembly, Last, Part, Range, Source};
use super::part::{Checksums, PartBody, PartJob};
use super::{kib, Existing, Publication, Published, Shared};
use crate::error::{Error, Kind, Result};
use crate::net::aws::delete_object;
use crate::object_crc::ObjectCrc;
use crate::sink::{sidecar_text, Assembled, Chunk, StoredChecksum, TarballWriter};

/// Parts uploading at once for one tarball, so that one tarball cannot
/// hold every upload slot.
const PARTS_PER_TARBALL: usize = 4;
const SIDECAR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Writing,
    Finished,
    Prepared,
    Published,
    Aborted,
}

/// One tarball being uploaded.
pub(super) struct S3Writer {
    /// Its index in the plan.
    index: usize,
    shared: Arc<Shared>,
    file_name: String,
    /// The sidecar's file name, if the tarball has one.
    sidecar: Option<String>,
    /// The key its bytes upload to: its final key, or for an origin (a
    /// tarball others copy from) a staging key, completed there and
    /// copied to the final key when the set is published.
    key: String,
    /// Its final key.
    final_key: String,
    /// `s3://bucket/final_key`, for messages and the summary.
    url: String,
    /// Until the upload is completed or aborted.
    upload_id: Option<String>,
    /// An origin's upload at its final key (parts copied from the
    /// staging object), and those parts.
    final_upload: Option<(String, Vec<CompletedPart>)>,
    /// What the final key and the sidecar's key held when the run began.
    before: Before,
    /// Whether the final key holds these very bytes already (known once
    /// prepared): then it is left as it is.
    same: bool,
    /// The tarball's Content-Type.
    content_type: &'static str,
    checksums: Checksums,
    /// Cuts the bytes into parts to send and parts to copy.
    assembly: Assembly,
    /// Once sealed ([`S3Writer::seal`]): the body at the staging key, and
    /// how its bytes reached the store.
    body: Option<late::Body>,
    /// Temporary objects to make when publishing, in order: each may copy
    /// from the one before.
    temps: Vec<(usize, Range, Option<Range>, ObjectCrc)>,
    /// Temporary objects whose upload started (their last part is sent
    /// as it comes): key, upload id, checksums.
    temp_uploads: HashMap<usize, (String, String, Checksums)>,
    /// Their parts uploaded.
    temp_parts: HashMap<usize, CompletedPart>,
    /// Parts to copy when publishing.
    to_copy: Vec<(u64, Range)>,
    /// The objects copies read from, once published or made.
    sources: HashMap<Source, Arc<Published>>,
    /// Temporary objects made: deleted once the tarball is complete, or
    /// on abort.
    temp_keys: Vec<String>,
    /// The whole object's CRCs, and each part's by number.
    crc: ObjectCrc,
    part_crcs: Vec<(u64, ObjectCrc)>,
    /// Parts uploading or copying: of the tarball, or of a temporary
    /// object.
    tasks: JoinSet<Result<(Option<usize>, CompletedPart)>>,
    /// Parts uploaded or copied.
    parts: Vec<CompletedPart>,
    /// The first failure, returned again by every later call.
    failed: Option<(Kind, String)>,
    state: State,
    /// Keys made visible (tarball, sidecar), deleted again on abort.
    published: Vec<String>,
    /// Tells the tarballs that copy from this one when it is published.
    publication: watch::Sender<Publication>,
    stored: Option<StoredChecksum>,
}

/// What a tarball's keys held before the run: a key the run replaces is
/// not deleted by an abort (that would lose both), and a tarball whose
/// key already holds the same bytes is left as it is.
#[derive(Clone, Debug, Default)]
pub(super) struct Before {
    /// The object at the final key: its size and full-object checksum.
    pub(super) tarball: Option<Existing>,
    /// Whether the sidecar's key held an object.
    pub(super) sidecar: bool,
}

impl S3Writer {
    /// The writer of a multipart upload just started, its parts to send
    /// `base_part` bytes, tarball `index` of the plan (told to those that
    /// copy from it through `publication`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        file_name: String,
        sidecar: Option<String>,
        (key, final_key): (String, String),
        before: Before,
        content_type: &'static str,
        url: String,
        upload_id: String,
        base_part: u64,
        checksums: Checksums,
        (index, publication): (usize, watch::Sender<Publication>),
    ) -> S3Writer {
        let assembly = Assembly::new(
            base_part,
            shared.settings.copy_piece,
            shared.copies(),
            shared.held.clone(),
        );
        S3Writer {
            index,
            shared,
            file_name,
            sidecar,
            key,
            final_key,
            url,
            upload_id: Some(upload_id),
            final_upload: None,
            before,
            same: false,
            content_type,
            checksums,
            assembly,
            body: None,
            temps: Vec::new(),
            to_copy: Vec::new(),
            sources: HashMap::new(),
            temp_uploads: HashMap::new(),
            temp_parts: HashMap::new(),
            temp_keys: Vec::new(),
            crc: ObjectCrc::default(),
            part_crcs: Vec::new(),
            tasks: JoinSet::new(),
            parts: Vec::new(),
            failed: None,
            state: State::Writing,
            published: Vec::new(),
            publication,
            stored: None,
        }
    }

    fn check(&self, call: &str, want: State) -> Result<()> {
        if let Some(f) = &self.failed {
            return Err(Error::failed(f.0, f.1.clone()));
        }
        if self.state != want {
            return Err(Error::internal(format!(
                "{}: {call} called in state {:?}",
                self.url, self.state
            )));
        }
        Ok(())
    }

    /// Keeps an error to return again.
    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some((e.kind(), e.to_string()));
        e
    }

    /// Takes the result of one part task.
    fn record(
        &mut self,
        done: Result<Result<(Option<usize>, CompletedPart)>, JoinError>,
    ) -> Result<()> {
        let err = match done {
            Ok(Ok((None, part))) => {
                self.parts.push(part);
                return Ok(());
            }
            Ok(Ok((Some(temp), part))) => {
                self.temp_parts.insert(temp, part);
                return Ok(());
            }
            Ok(Err(e)) => e,
            Err(e) => Error::internal(format!("{}: a part task failed: {e}", self.url)),
        };
        Err(self.fail(err))
    }

    /// Takes the results of parts already done, without waiting.
    fn reap(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.try_join_next() {
            self.record(done)?;
        }
        Ok(())
    }

    /// Waits until fewer than `limit` part tasks run.
    async fn make_room(&mut self, limit: usize) -> Result<()> {
        while self.tasks.len() >= limit {
            let done = self.tasks.join_next().await.expect("tasks is not empty");
            self.record(done)?;
        }
        Ok(())
    }

    /// Starts the parts the assembly closed: parts to send upload in the
    /// background once a slot is free; parts to copy wait for `publish`.
    async fn start(&mut self, closed: Vec<Part>) -> Result<()> {
        for part in closed {
            tracing::trace!(url = %self.url, ?part, "part closed");
            match part {
                Part::Copy { number, range } => {
                    self.part_crcs.push((number, range.crc));
                    self.to_copy.push((number, range));
                }
                Part::Temp { id, first, last } => match last {
                    Last::Copy(range) => self.temps.push((id, first, Some(range), range.crc)),
                    Last::Send(chunks, crc) => {
                        self.temps.push((id, first, None, crc));
                        let (key, upload_id) = self.start_temp(id).await?;
                        self.send_part(key, upload_id, Some(id), 2, chunks, crc)
                            .await?;
                    }
                },
                Part::Send {
                    number,
                    chunks,
                    crc,
                } => {
                    self.part_crcs.push((number, crc));
                    let (key, upload_id) = (self.key.clone(), self.upload_id.clone());
                    let upload_id = upload_id.expect("upload in progress");
                    self.send_part(key, upload_id, None, number, chunks, crc)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Uploads `chunks` as part `number` of `key` (of temporary object
    /// `temp`, if given), in the background once a slot is free.
    async fn send_part(
        &mut self,
        key: String,
        upload_id: String,
        temp: Option<usize>,
        number: u64,
        chunks: Vec<Bytes>,
        crc: ObjectCrc,
    ) -> Result<()> {
        self.make_room(PARTS_PER_TARBALL).await?;
        // A part larger than the whole allowance waits for all of it.
        let need = kib(crc.len).min(kib(self.shared.settings.upload_bytes));
        let permit = self
            .shared
            .upload_kib
            .clone()
            .acquire_many_owned(need)
            .await
            .expect("the semaphore is never closed");
        self.shared.stats.add_sent(crc.len);
        let checksums = match temp {
            Some(id) => self.temp_uploads[&id].2,
            None => self.checksums,
        };
        let job = PartJob {
            client: self.shared.client.clone(),
            bucket: self.shared.at.bucket.clone(),
            url: self.shared.at.object_url(&key),
            key,
            upload_id,
            number: number as i32,
            body: PartBody::Chunks(chunks.into()),
            crc,
            checksums,
            policy: self.shared.settings.retry.clone(),
        };
        self.tasks.spawn(async move {
            let _permit = permit;
            Ok((temp, job.run().await?))
        });
        Ok(())
    }
}

#[async_trait]
impl TarballWriter for S3Writer {
    async fn write(&mut self, chunk: Chunk) -> Result<()> {
        self.check("write", State::Writing)?;
        self.reap()?;
        self.crc.append(chunk.crc);
        let mut closed = Vec::new();
        let pushed = self.assembly.push(chunk, &mut closed);
        pushed.map_err(|e| self.too_large(e))?;
        self.start(closed).await
    }

    fn can_read_back(&self) -> bool {
        self.reads_back()
    }

    async fn read_back(&mut self, offset: u64, len: usize) -> Result<Bytes> {
        if self.body.is_none() {
            self.check("read_back", State::Writing)?;
            if !self.reads_back() {
                return Err(Error::internal(format!(
                    "{}: read back from an upload at its final name",
                    self.url
                )));
            }
            self.seal().await?;
        }
        self.get_body(offset, len).await
    }

    async fn finish(&mut self) -> Result<()> {
        self.check("finish", State::Writing)?;
        self.upload_closed().await?;
        self.state = State::Finished;
        tracing::debug!(
            url = %self.url,
            sent = self.assembly.sent,
            copied = self.assembly.copied(),
            to_copy = self.to_copy.len(),
            "all parts to send uploaded"
        );
        Ok(())
    }

    async fn prepare(&mut self) -> Result<()> {
        self.check("prepare", State::Finished)?;
        self.copy_all().await?;
        if self.key != self.final_key {
            self.stage().await?;
        }
        let stored = match self.stored.clone() {
            Some(s) => s,
            None => self.stored_checksum(),
        };
        self.same = self.before.tarball.as_ref().is_some_and(|there| {
            there.size == self.crc.len && there.checksum.as_deref() == Some(stored.value.as_str())
        });
        self.stored = Some(stored);
        // What its final names change, for the set's journal.
        let mut changes = self.shared.changes.lock().expect("changes");
        if !self.same {
            changes.note(&self.final_key, self.before.tarball.is_some());
        }
        if let Some(sidecar) = &self.sidecar {
            changes.note(&self.shared.at.key(sidecar), self.before.sidecar);
        }
        drop(changes);
        self.state = State::Prepared;
        Ok(())
    }

    async fn publish(&mut self, sha256_hex: &str) -> Result<()> {
        self.check("publish", State::Prepared)?;
        self.complete_final().await?;
        let s = self.shared.clone();
        let Some(sidecar) = &self.sidecar else {
            self.state = State::Published;
            return Ok(());
        };
        let sidecar_key = s.at.key(sidecar);
        let text = Bytes::from(sidecar_text(sha256_hex, &self.file_name));
        // Recorded first, unless it held something before: a run stopped
        // while the request is under way still deletes it on abort.
        if !self.before.sidecar {
            self.published.push(sidecar_key.clone());
        }
        let put = s
            .put_small(&sidecar_key, text, SIDECAR_CONTENT_TYPE, self.checksums)
            .await;
        if let Err(e) = put {
            return Err(self.fail(e));
        }
        self.state = State::Published;
        Ok(())
    }

    async fn abort(&mut self) {
        self.state = State::Aborted;
        self.to_copy.clear();
        self.temps.clear();
        self.publication.send_replace(Publication::Failed);
        // Stop every part upload and copy first, so none lands after the abort.
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let s = self.shared.clone();
        // Every upload of the tarball and its temporaries not yet ended,
        // one whose id never came back here included (a signal dropped the
        // request's future, or its answer stalled).
        let ours = format!("{}.rockpack-", self.final_key);
        s.abort_started(|k| k == self.final_key || k.starts_with(&ours))
            .await;
        let made = std::mem::take(&mut self.published)
            .into_iter()
            .rev()
            .chain(std::mem::take(&mut self.temp_keys));
        for key in made {
            if let Err(e) = delete_object(&s.client, &s.at.bucket, &key).await {
                s.undeleted
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!("{e}");
            }
        }
    }

    fn location(&self) -> String {
        self.url.clone()
    }

    fn checksum(&self) -> Option<StoredChecksum> {
        self.stored.clone()
    }

    fn assembled(&self) -> Option<Assembled> {
        Some(self.with_body(Assembled {
            sent_bytes: self.assembly.sent,
            copied_bytes: self.assembly.copied(),
            copied_ranges: self.assembly.runs,
            temporary_objects: self.assembly.temporaries(),
        }))
    }
}

impl S3Writer {
    /// Closes the last part and waits until every part to send is
    /// uploaded (parts to copy wait for `prepare`).
    async fn upload_closed(&mut self) -> Result<()> {
        self.reap()?;
        let mut closed = Vec::new();
        let finished = self.assembly.finish(&mut closed);
        finished.map_err(|e| self.too_large(e))?;
        self.start(closed).await?;
        while let Some(done) = self.tasks.join_next().await {
            self.record(done)?;
        }
        Ok(())
    }

    /// The assembly's "too many parts", with the tarball named.
    fn too_large(&mut self, e: Error) -> Error {
        let e = Error::failed(e.kind(), format!("UploadPart {}: {e}", self.url));
        self.fail(e)
    }
}
