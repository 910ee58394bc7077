//! What a tarball copies when it is published: its temporary objects
//! (chains of copies, several at once) and its ranges of published
//! tarballs and of those temporary objects.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_s3::types::CompletedPart;
use futures_util::{StreamExt, TryStreamExt};

use super::complete::complete_upload;
use super::S3Writer;
use crate::error::{Error, Result};
use crate::object_crc::ObjectCrc;
use crate::sink::s3::assembly::{Range, Source};
use crate::sink::s3::copy::{run_copies, CopyJob};
use crate::sink::s3::part::Checksums;
use crate::sink::s3::{Published, Shared};

/// Chains of temporary objects made at once for one tarball (two copies
/// each at most), beside its other copies.
const CHAINS_PER_TARBALL: usize = 4;

impl S3Writer {
    /// Starts temporary object `id`'s upload: its key and upload id.
    pub(super) async fn start_temp(&mut self, id: usize) -> Result<(String, String)> {
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
    pub(super) async fn copy_all(&mut self) -> Result<()> {
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
