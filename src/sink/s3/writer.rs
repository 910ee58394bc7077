//! One tarball's multipart upload, as a state machine: writing (chunks cut
//! into parts by [`super::assembly`], parts to send handed to
//! [`super::part`] as they close), finished (every part to send uploaded),
//! published (the tarballs it copies from published, its ranges copied by
//! [`super::copy`], the upload completed, then its sidecar put), or aborted
//! (nothing of it left).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumType, CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::assembly::{Assembly, Last, Part, Range, Source};
use super::copy::CopyJob;
use super::part::{Checksums, PartBody, PartJob};
use super::{kib, s3_error, Publication, Published, Shared};
use crate::error::{Error, Kind, Result};
use crate::object_crc::ObjectCrc;
use crate::sink::{sidecar_text, Chunk, StoredChecksum, TarballWriter};

/// Parts uploading at once for one tarball, so that one tarball cannot
/// hold every upload slot.
const PARTS_PER_TARBALL: usize = 4;
/// Parts copying at once for one tarball (the server does the work).
const COPIES_PER_TARBALL: usize = 8;
const SIDECAR_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Writing,
    Finished,
    Published,
    Aborted,
}

/// One tarball being uploaded.
pub(super) struct S3Writer {
    shared: Arc<Shared>,
    file_name: String,
    /// The sidecar's file name, if the tarball has one.
    sidecar: Option<String>,
    key: String,
    /// `s3://bucket/key`, for messages and the summary.
    url: String,
    /// Until the upload is completed or aborted.
    upload_id: Option<String>,
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

impl S3Writer {
    /// The writer of a multipart upload just started, its parts to send
    /// `base_part` bytes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        file_name: String,
        sidecar: Option<String>,
        key: String,
        url: String,
        upload_id: String,
        base_part: u64,
        checksums: Checksums,
        publication: watch::Sender<Publication>,
    ) -> S3Writer {
        let assembly = Assembly::new(base_part, shared.settings.copy_piece, shared.copies());
        S3Writer {
            shared,
            file_name,
            sidecar,
            key,
            url,
            upload_id: Some(upload_id),
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
            bucket: self.shared.bucket.clone(),
            url: self.shared.url(&key),
            key,
            upload_id,
            number: number as i32,
            body: PartBody::Chunks(chunks.into()),
            crc,
            checksums,
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
        let key = format!("{}.rockpack-tmp-{id}", self.key);
        let url = self.shared.url(&key);
        let started = self
            .shared
            .start_upload(&key, &url, "application/octet-stream")
            .await;
        let (upload_id, checksums) = started.map_err(|e| self.fail(e))?;
        self.temp_uploads
            .insert(id, (key.clone(), upload_id.clone(), checksums));
        Ok((key, upload_id))
    }

    /// The object `source` names: a tarball of the run once it is
    /// published, or a temporary object already made.
    async fn source(&mut self, source: Source) -> Result<Arc<Published>> {
        if let Some(p) = self.sources.get(&source) {
            return Ok(p.clone());
        }
        let Source::Tarball(index) = source else {
            return Err(self.fail(Error::internal(format!(
                "{}: a copy from {source:?}, not made yet",
                self.url
            ))));
        };
        let waited = self.shared.published(index, &self.url).await;
        let p = waited.map_err(|e| self.fail(e))?;
        self.sources.insert(source, p.clone());
        Ok(p)
    }

    /// A copy of `range` as part `number` of the upload `upload_id` of
    /// `key`.
    async fn copy_job(
        &mut self,
        key: &str,
        upload_id: &str,
        number: u64,
        range: Range,
    ) -> Result<CopyJob> {
        Ok(CopyJob {
            shared: self.shared.clone(),
            key: key.to_string(),
            url: self.shared.url(key),
            upload_id: upload_id.to_string(),
            number: number as i32,
            source: self.source(range.source).await?,
            start: range.start,
            crc: range.crc,
            checksums: self.checksums,
        })
    }

    /// Makes the temporary objects, in order: each is its first range (at
    /// least 5 MiB) then its last, both copied by the server.
    async fn make_temps(&mut self) -> Result<()> {
        for (id, first, last, last_crc) in std::mem::take(&mut self.temps) {
            let (key, upload_id) = self.start_temp(id).await?;
            let checksums = self.temp_uploads[&id].2;
            let url = self.shared.url(&key);
            let mut one = self.copy_job(&key, &upload_id, 1, first).await?;
            one.checksums = checksums;
            let (one, two) = match last {
                Some(range) => {
                    let mut two = self.copy_job(&key, &upload_id, 2, range).await?;
                    two.checksums = checksums;
                    let copied = tokio::try_join!(one.run(), two.run());
                    copied.map_err(|e| self.fail(e))?
                }
                None => {
                    let one = one.run().await.map_err(|e| self.fail(e))?;
                    let two = self.temp_parts.remove(&id).ok_or_else(|| {
                        Error::internal(format!("{url}: its last part was not uploaded"))
                    });
                    (one, two.map_err(|e| self.fail(e))?)
                }
            };
            let stored = checksums.stored(first.crc.then(last_crc), &[first.crc, last_crc]);
            let done = complete_upload(
                &self.shared,
                &key,
                &upload_id,
                vec![one, two],
                checksums,
                &stored,
                &mut self.temp_keys,
            )
            .await;
            let etag = done.map_err(|e| self.fail(e))?;
            self.temp_uploads.remove(&id);
            self.shared.stats.add_temp(first.crc.len + last_crc.len);
            self.sources
                .insert(Source::Temp(id), Arc::new(Published { key, url, etag }));
        }
        Ok(())
    }

    /// Copies the ranges of published tarballs (and of its temporary
    /// objects) this one holds.
    async fn copy_ranges(&mut self) -> Result<()> {
        let key = self.key.clone();
        let upload_id = self.upload_id.clone().expect("upload in progress");
        for (number, range) in std::mem::take(&mut self.to_copy) {
            let job = self.copy_job(&key, &upload_id, number, range).await?;
            self.make_room(COPIES_PER_TARBALL).await?;
            self.tasks
                .spawn(async move { Ok((None, job.run().await?)) });
        }
        while let Some(done) = self.tasks.join_next().await {
            self.record(done)?;
        }
        Ok(())
    }

    /// Deletes the temporary objects once the tarball is complete.
    async fn delete_temps(&mut self) -> Result<()> {
        let s = self.shared.clone();
        while let Some(key) = self.temp_keys.last().cloned() {
            let deleted = s
                .client
                .delete_object()
                .bucket(&s.bucket)
                .key(&key)
                .send()
                .await;
            if let Err(e) = deleted {
                return Err(self.fail(s3_error("DeleteObject", &s.url(&key), &e)));
            }
            self.temp_keys.pop();
        }
        Ok(())
    }

    /// Completes the upload with every part and the object's checksum.
    async fn complete(&mut self) -> Result<Option<String>> {
        let upload_id = self.upload_id.clone().expect("upload in progress");
        self.parts.sort_by_key(|p| p.part_number());
        self.part_crcs.sort_by_key(|p| p.0);
        let part_crcs: Vec<ObjectCrc> = self.part_crcs.iter().map(|p| p.1).collect();
        let stored = self.checksums.stored(self.crc, &part_crcs);
        let done = complete_upload(
            &self.shared,
            &self.key,
            &upload_id,
            self.parts.clone(),
            self.checksums,
            &stored,
            &mut self.published,
        )
        .await;
        let etag = done.map_err(|e| self.fail(e))?;
        self.upload_id = None;
        tracing::debug!(url = %self.url, checksum = %stored.value, "upload completed");
        self.stored = Some(stored);
        Ok(etag)
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
    let url = s.url(key);
    let req = s
        .client
        .complete_multipart_upload()
        .bucket(&s.bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        );
    let req = match checksums {
        Checksums::FullObject => req
            .checksum_type(ChecksumType::FullObject)
            .checksum_crc64_nvme(&stored.value),
        Checksums::Composite => req,
    };
    let out = match req.send().await {
        Ok(out) => out,
        Err(e) => {
            if !may_have_happened(&e) {
                made.pop();
            }
            return Err(s3_error("CompleteMultipartUpload", &url, &e));
        }
    };
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

    async fn publish(&mut self, sha256_hex: &str) -> Result<()> {
        self.check("publish", State::Finished)?;
        self.make_temps().await?;
        self.copy_ranges().await?;
        let etag = self.complete().await?;
        self.delete_temps().await?;
        let s = self.shared.clone();
        self.publication
            .send_replace(Publication::Done(Arc::new(Published {
                key: self.key.clone(),
                url: self.url.clone(),
                etag,
            })));

        let Some(sidecar) = &self.sidecar else {
            self.state = State::Published;
            return Ok(());
        };
        let sidecar_key = s.key(sidecar);
        let text = Bytes::from(sidecar_text(sha256_hex, &self.file_name));
        let crc = ObjectCrc::of(&text);
        let set = &s.settings;
        let put = s
            .client
            .put_object()
            .bucket(&s.bucket)
            .key(&sidecar_key)
            .content_type(SIDECAR_CONTENT_TYPE)
            .content_length(text.len() as i64);
        let checksum = self.checksums.text(crc);
        let put = match self.checksums {
            Checksums::FullObject => put.checksum_crc64_nvme(checksum),
            Checksums::Composite => put.checksum_crc32_c(checksum),
        };
        // Recorded first: a run stopped while the request is under way
        // (a signal drops this future) still deletes it on abort.
        self.published.push(sidecar_key.clone());
        let put = put
            .set_storage_class(set.storage_class.clone())
            .set_tagging(set.tagging.clone())
            .set_server_side_encryption(set.sse.clone())
            .set_ssekms_key_id(set.sse_kms_key_id.clone())
            .body(ByteStream::from(text))
            .send()
            .await;
        if let Err(e) = put {
            if !may_have_happened(&e) {
                self.published.pop();
            }
            return Err(s3_error("PutObject", &s.url(&sidecar_key), &e));
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
        let temps = std::mem::take(&mut self.temp_uploads).into_values();
        let uploads = self
            .upload_id
            .take()
            .map(|id| (self.key.clone(), id))
            .into_iter()
            .chain(temps.map(|(key, id, _)| (key, id)));
        for (key, upload_id) in uploads {
            let r = s
                .client
                .abort_multipart_upload()
                .bucket(&s.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .send()
                .await;
            match r {
                Ok(_) => tracing::debug!(url = %s.url(&key), "multipart upload aborted"),
                Err(e) if e.code() == Some("NoSuchUpload") => {}
                Err(e) => tracing::warn!(
                    "{} (upload id {upload_id}); the parts stay until a lifecycle rule removes them",
                    s3_error("AbortMultipartUpload", &s.url(&key), &e)
                ),
            }
        }
        let made = std::mem::take(&mut self.published)
            .into_iter()
            .rev()
            .chain(std::mem::take(&mut self.temp_keys));
        for key in made {
            if let Err(e) = s
                .client
                .delete_object()
                .bucket(&s.bucket)
                .key(&key)
                .send()
                .await
            {
                tracing::warn!("{}", s3_error("DeleteObject", &s.url(&key), &e));
            }
        }
    }

    fn location(&self) -> String {
        self.url.clone()
    }

    fn checksum(&self) -> Option<StoredChecksum> {
        self.stored.clone()
    }
}

impl S3Writer {
    /// The assembly's "too many parts", with the tarball named.
    fn too_large(&mut self, e: Error) -> Error {
        let e = Error::failed(e.kind(), format!("UploadPart {}: {e}", self.url));
        self.fail(e)
    }
}

/// Whether a failed request may still have taken effect: no clean answer
/// came back, or (after the SDK's own retries) the upload is gone, which an
/// earlier try that completed it explains.
fn may_have_happened<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(_) => e.code() == Some("NoSuchUpload"),
        _ => true,
    }
}
