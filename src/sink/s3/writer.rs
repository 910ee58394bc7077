//! One tarball's multipart upload, as a state machine: writing (chunks cut
//! into parts by [`super::assembly`], parts to send handed to
//! [`super::part`] as they close), finished (every part to send uploaded),
//! published (the tarballs it copies from published; its temporary
//! objects made, chains of them at once, while its ranges of those
//! tarballs are copied by [`super::copy`]; then its ranges of the
//! temporary objects; the upload completed, then its sidecar put), or
//! aborted (nothing of it left).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::assembly::{Assembly, Last, Part, Range, Source};
use super::copy::CopyJob;
use super::part::{Checksums, PartBody, PartJob};
use super::{kib, Existing, Publication, Published, Shared};
use crate::error::{Error, Kind, Result};
use crate::net::aws::{delete_object, error_text, is_transient, may_have_happened, s3_error};
use crate::net::retry::Tries;
use crate::object_crc::ObjectCrc;
use crate::sink::{sidecar_text, Assembled, Chunk, StoredChecksum, TarballWriter};
use aws_sdk_s3::error::ProvideErrorMetadata;

/// Parts uploading at once for one tarball, so that one tarball cannot
/// hold every upload slot.
const PARTS_PER_TARBALL: usize = 4;
/// Parts copying at once for one tarball (the server does the work).
const COPIES_PER_TARBALL: usize = 8;
/// Chains of temporary objects made at once for one tarball (two copies
/// each at most), beside its other copies.
const CHAINS_PER_TARBALL: usize = 4;
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
    /// `base_part` bytes.
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
        publication: watch::Sender<Publication>,
    ) -> S3Writer {
        let assembly = Assembly::new(
            base_part,
            shared.settings.copy_piece,
            shared.copies(),
            shared.held.clone(),
        );
        S3Writer {
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

    /// Starts temporary object `id`'s upload: its key and upload id.
    async fn start_temp(&mut self, id: usize) -> Result<(String, String)> {
        if let Some((key, upload_id, _)) = self.temp_uploads.get(&id) {
            return Ok((key.clone(), upload_id.clone()));
        }
        let key = format!("{}.rockpack-tmp-{id}", self.final_key);
        let url = self.shared.at.object_url(&key);
        let started = self
            .shared
            .start_upload(&key, &url, "application/octet-stream")
            .await;
        let (upload_id, checksums) = started.map_err(|e| self.fail(e))?;
        self.temp_uploads
            .insert(id, (key.clone(), upload_id.clone(), checksums));
        Ok((key, upload_id))
    }

    /// The tarballs of the run the copies of `ranges` read from, once
    /// published.
    async fn wait_for_sources(&mut self, ranges: &[Range]) -> Result<()> {
        for r in ranges {
            let Source::Tarball(index) = r.source else {
                continue;
            };
            if self.sources.contains_key(&r.source) {
                continue;
            }
            let waited = self.shared.published(index, &self.url).await;
            let p = waited.map_err(|e| self.fail(e))?;
            self.sources.insert(r.source, p);
        }
        Ok(())
    }

    /// Copies what this tarball holds of other objects: its temporary
    /// objects are made, chain by chain (each one of a chain copies from
    /// the one before; chains at once), while its ranges of published
    /// tarballs are copied; then its ranges of the temporary objects.
    async fn copy_all(&mut self) -> Result<()> {
        let temps = std::mem::take(&mut self.temps);
        let to_copy = std::mem::take(&mut self.to_copy);
        let mut ranges: Vec<Range> = to_copy.iter().map(|(_, r)| *r).collect();
        ranges.extend(temps.iter().flat_map(|t| std::iter::once(t.1).chain(t.2)));
        self.wait_for_sources(&ranges).await?;
        // Every temporary upload is started and its key noted before any
        // copy, so that an abort (or a signal dropping this future) finds
        // them all.
        let mut jobs = Vec::with_capacity(temps.len());
        for (id, first, last, last_crc) in temps {
            let (key, upload_id) = self.start_temp(id).await?;
            if !self.temp_keys.contains(&key) {
                self.temp_keys.push(key.clone());
                self.shared.note_leftover(&key);
            }
            let checksums = self.temp_uploads[&id].2;
            let sent = match last {
                Some(_) => None,
                None => {
                    let part = self.temp_parts.remove(&id).ok_or_else(|| {
                        Error::internal(format!(
                            "{}: its last part was not uploaded",
                            self.shared.at.object_url(&key)
                        ))
                    });
                    Some(part.map_err(|e| self.fail(e))?)
                }
            };
            jobs.push(TempJob {
                id,
                key,
                upload_id,
                checksums,
                first,
                last,
                last_crc,
                sent,
            });
        }
        let upload_id = self.upload_id.clone().expect("upload in progress");
        let (from_temps, from_tarballs): (Vec<_>, Vec<_>) = to_copy
            .into_iter()
            .partition(|(_, r)| matches!(r.source, Source::Temp(_)));
        let (shared, key, checksums) = (self.shared.clone(), self.key.clone(), self.checksums);
        let job = |number: u64, range: Range, sources: &HashMap<Source, Arc<Published>>| {
            let source = sources[&range.source].clone();
            CopyJob::new(&shared, &key, &upload_id, checksums, number, &range, source)
        };
        let copies: Vec<CopyJob> = from_tarballs
            .into_iter()
            .map(|(n, r)| job(n, r, &self.sources))
            .collect();
        let made = make_temps(&self.shared, &self.sources, jobs);
        let (made, mut copied) =
            tokio::try_join!(made, run_copies(copies)).map_err(|e| self.fail(e))?;
        for (id, published, len) in made {
            self.temp_uploads.remove(&id);
            self.shared.stats.add_temp(len);
            self.sources.insert(Source::Temp(id), published);
        }
        let copies: Vec<CopyJob> = from_temps
            .into_iter()
            .map(|(n, r)| job(n, r, &self.sources))
            .collect();
        copied.extend(run_copies(copies).await.map_err(|e| self.fail(e))?);
        self.parts.extend(copied);
        Ok(())
    }

    /// The object's checksum as the store keeps it, from the CRCs of its
    /// bytes and parts.
    fn stored_checksum(&mut self) -> StoredChecksum {
        self.part_crcs.sort_by_key(|p| p.0);
        let part_crcs: Vec<ObjectCrc> = self.part_crcs.iter().map(|p| p.1).collect();
        self.checksums.stored(self.crc, &part_crcs)
    }

    /// Completes an origin's upload at its staging key and tells the
    /// tarballs that copy from it; then starts its upload at the final
    /// key and copies the staged object into it, part for part (the same
    /// parts, so the same checksums), leaving it to complete when the set
    /// is published.
    async fn stage(&mut self) -> Result<()> {
        let upload_id = self.upload_id.clone().expect("upload in progress");
        self.parts.sort_by_key(|p| p.part_number());
        let stored = self.stored_checksum();
        // Deleted on abort, or once the set is published.
        self.temp_keys.push(self.key.clone());
        self.shared.note_leftover(&self.key);
        let mut noted = Vec::new();
        let done = complete_upload(
            &self.shared,
            &self.key,
            &upload_id,
            self.parts.clone(),
            self.checksums,
            &stored,
            &mut noted,
        )
        .await;
        let etag = done.map_err(|e| self.fail(e))?;
        self.upload_id = None;
        let staged = Arc::new(Published {
            key: self.key.clone(),
            url: self.shared.at.object_url(&self.key),
            etag,
        });
        self.publication
            .send_replace(Publication::Done(staged.clone()));
        let content_type = self.content_type;
        let started = self
            .shared
            .start_upload(&self.final_key, &self.url, content_type)
            .await;
        let (final_id, checksums) = started.map_err(|e| self.fail(e))?;
        if checksums != self.checksums {
            let e = Error::failed(
                Kind::Remote,
                format!("CreateMultipartUpload {}: the server stopped taking full-object checksums mid-run", self.url),
            );
            return Err(self.fail(e));
        }
        self.final_upload = Some((final_id.clone(), Vec::new()));
        let mut start = 0;
        let mut copies = Vec::with_capacity(self.part_crcs.len());
        for &(number, crc) in &self.part_crcs {
            let range = Range {
                source: Source::Tarball(usize::MAX),
                start,
                crc,
            };
            start += crc.len;
            let mut copy = CopyJob::new(
                &self.shared,
                &self.final_key,
                &final_id,
                checksums,
                number,
                &range,
                staged.clone(),
            );
            copy.staged = true;
            copies.push(copy);
        }
        let copied = run_copies(copies).await.map_err(|e| self.fail(e))?;
        self.final_upload = Some((final_id, copied));
        self.stored = Some(stored);
        Ok(())
    }

    /// Completes the upload at the final key, unless that key already
    /// holds these very bytes (a re-run of the same pack): then it is left
    /// as it is and the upload aborted.
    async fn complete_final(&mut self) -> Result<()> {
        let stored = self.stored.clone().expect("prepared");
        let (upload_id, mut parts) = match self.final_upload.take() {
            Some(f) => f,
            None => {
                let id = self.upload_id.take().expect("upload in progress");
                (id, std::mem::take(&mut self.parts))
            }
        };
        parts.sort_by_key(|p| p.part_number());
        if self.same {
            tracing::info!(url = %self.url, "already holds these bytes; left as it is");
            let aborted = crate::net::aws::abort_upload(
                &self.shared.client,
                &self.shared.at.bucket,
                &self.final_key,
                &upload_id,
            )
            .await;
            if let Err(e) = aborted {
                tracing::warn!("{e}; `rockpack abort-uploads` removes it");
            }
            self.shared.in_flight.ended(&upload_id);
            return Ok(());
        }
        // A key that held something before is not deleted on abort: the
        // set's journal puts its old bytes back.
        let mut not_noted = Vec::new();
        let made = if self.before.tarball.is_some() {
            &mut not_noted
        } else {
            &mut self.published
        };
        let done = complete_upload(
            &self.shared,
            &self.final_key,
            &upload_id,
            parts,
            self.checksums,
            &stored,
            made,
        )
        .await;
        done.map_err(|e| self.fail(e))?;
        tracing::debug!(url = %self.url, checksum = %stored.value, "upload completed");
        Ok(())
    }
}

/// Completes the upload `upload_id` of `key` with `parts` and the object's
/// checksum `stored`; the server's own checksum of the object, if it
/// reports one, must be the same. Returns the object's ETag. `key` is in
/// `made` (deleted on abort) from the moment the object may exist: before
/// the request, and after it unless it was cleanly refused.
#[allow(clippy::too_many_arguments)]
async fn complete_upload(
    s: &Shared,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
    checksums: Checksums,
    stored: &StoredChecksum,
    made: &mut Vec<String>,
) -> Result<Option<String>> {
    // Recorded first: a signal may drop this future mid-request.
    made.push(key.to_string());
    let url = s.at.object_url(key);
    let mut tries = Tries::new(&s.settings.retry);
    let out = loop {
        let req = s
            .client
            .complete_multipart_upload()
            .bucket(&s.at.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.clone()))
                    .build(),
            );
        let req = match checksums {
            Checksums::FullObject => req
                .checksum_type(ChecksumType::FullObject)
                .checksum_crc64_nvme(&stored.value),
            Checksums::Composite => req,
        };
        let e = match s.in_flight.run(req.send()).await {
            Ok(out) => break out,
            Err(e) => e,
        };
        // An earlier try whose answer was lost may have completed it.
        if tries.failed() > 0 && e.code() == Some("NoSuchUpload") {
            if let Some(etag) = completed_earlier(s, key, stored).await {
                s.in_flight.ended(upload_id);
                return Ok(Some(etag));
            }
        }
        if !is_transient(&e) {
            if !may_have_happened(&e) && tries.failed() == 0 {
                made.pop();
            }
            return Err(s3_error("CompleteMultipartUpload", &url, &e));
        }
        let what = format!("CompleteMultipartUpload {url}");
        tries
            .again(&what, &error_text(&e))
            .await
            .map_err(|m| Error::failed(Kind::GaveUp, format!("{what}: {m}")))?;
    };
    s.in_flight.ended(upload_id);
    let theirs = match checksums {
        Checksums::FullObject => out.checksum_crc64_nvme(),
        Checksums::Composite => out.checksum_crc32_c(),
    };
    if let Some(theirs) = theirs.filter(|t| *t != stored.value) {
        return Err(Error::failed(
            Kind::Remote,
            format!(
                "CompleteMultipartUpload {url}: the object has {} {theirs}, the bytes rockpack wrote {}",
                stored.algorithm, stored.value
            ),
        ));
    }
    Ok(out.e_tag().map(str::to_string))
}

/// The ETag of `key` if it holds the object `stored` describes: a
/// CompleteMultipartUpload whose answer was lost did complete it.
async fn completed_earlier(s: &Shared, key: &str, stored: &StoredChecksum) -> Option<String> {
    let there = s.existing(key).await.ok()??;
    (there.checksum.as_deref() == Some(stored.value.as_str()))
        .then(|| there.etag.unwrap_or_default())
}

/// A temporary object to make: its upload (started), its first range and
/// its last (a range, or its part already sent).
struct TempJob {
    id: usize,
    key: String,
    upload_id: String,
    checksums: Checksums,
    first: Range,
    last: Option<Range>,
    last_crc: ObjectCrc,
    sent: Option<CompletedPart>,
}

/// Makes the temporary objects `jobs` (in order): chains at once, each
/// chain in order; `sources` holds the published tarballs they copy from.
/// Returns each one made (id, object, bytes).
async fn make_temps(
    shared: &Arc<Shared>,
    sources: &HashMap<Source, Arc<Published>>,
    jobs: Vec<TempJob>,
) -> Result<Vec<(usize, Arc<Published>, u64)>> {
    // A temporary object that copies from another follows it in its chain.
    let mut chains: Vec<Vec<TempJob>> = Vec::new();
    let mut chain_of: HashMap<usize, usize> = HashMap::new();
    for job in jobs {
        let c = match job.first.source {
            Source::Temp(before) => chain_of[&before],
            Source::Tarball(_) => {
                chains.push(Vec::new());
                chains.len() - 1
            }
        };
        chain_of.insert(job.id, c);
        chains[c].push(job);
    }
    let made: Vec<Vec<_>> = futures_util::stream::iter(chains)
        .map(|chain| make_chain(shared, sources, chain))
        .buffer_unordered(CHAINS_PER_TARBALL)
        .try_collect()
        .await?;
    Ok(made.into_iter().flatten().collect())
}

/// One chain of temporary objects, in order.
async fn make_chain(
    shared: &Arc<Shared>,
    sources: &HashMap<Source, Arc<Published>>,
    chain: Vec<TempJob>,
) -> Result<Vec<(usize, Arc<Published>, u64)>> {
    let mut made: Vec<(usize, Arc<Published>, u64)> = Vec::new();
    for t in chain {
        let url = shared.at.object_url(&t.key);
        let source = |r: &Range| match r.source {
            Source::Tarball(_) => sources[&r.source].clone(),
            Source::Temp(id) => made
                .iter()
                .find(|m| m.0 == id)
                .expect("a chain makes its objects in order")
                .1
                .clone(),
        };
        let job = |number: u64, r: &Range| {
            CopyJob::new(
                shared,
                &t.key,
                &t.upload_id,
                t.checksums,
                number,
                r,
                source(r),
            )
        };
        let one = job(1, &t.first);
        let (one, two) = match (&t.last, t.sent) {
            (Some(r), _) => tokio::try_join!(one.run(), job(2, r).run())?,
            (None, Some(sent)) => (one.run().await?, sent),
            (None, None) => {
                return Err(Error::internal(format!(
                    "{url}: its last part is neither copied nor sent"
                )))
            }
        };
        let stored = t
            .checksums
            .stored(t.first.crc.then(t.last_crc), &[t.first.crc, t.last_crc]);
        // Its key is already noted for deletion: this list is not needed.
        let mut noted = Vec::new();
        let etag = complete_upload(
            shared,
            &t.key,
            &t.upload_id,
            vec![one, two],
            t.checksums,
            &stored,
            &mut noted,
        )
        .await?;
        let len = t.first.crc.len + t.last_crc.len;
        let published = Arc::new(Published {
            key: t.key,
            url,
            etag,
        });
        made.push((t.id, published, len));
    }
    Ok(made)
}

/// Runs part copies, `COPIES_PER_TARBALL` at once.
async fn run_copies(jobs: Vec<CopyJob>) -> Result<Vec<CompletedPart>> {
    futures_util::stream::iter(jobs)
        .map(CopyJob::run)
        .buffer_unordered(COPIES_PER_TARBALL)
        .try_collect()
        .await
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

    async fn finish(&mut self) -> Result<()> {
        self.check("finish", State::Writing)?;
        self.reap()?;
        let mut closed = Vec::new();
        let finished = self.assembly.finish(&mut closed);
        finished.map_err(|e| self.too_large(e))?;
        self.start(closed).await?;
        while let Some(done) = self.tasks.join_next().await {
            self.record(done)?;
        }
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
        Some(Assembled {
            sent_bytes: self.assembly.sent,
            copied_bytes: self.assembly.copied(),
            copied_ranges: self.assembly.runs,
            temporary_objects: self.assembly.temporaries(),
        })
    }
}

impl S3Writer {
    /// The assembly's "too many parts", with the tarball named.
    fn too_large(&mut self, e: Error) -> Error {
        let e = Error::failed(e.kind(), format!("UploadPart {}: {e}", self.url));
        self.fail(e)
    }
}
