//! A ZIP archive whose links repeat bytes it holds: its bytes so far (its
//! body) are sealed, completed at its staging key and published to the
//! tarballs that copy from it, and read back from there; its final upload
//! is the body's parts, copied, then its tail, where the repeated bytes
//! are copied from the body like bytes another tarball holds.

use std::sync::Arc;

use bytes::Bytes;

use super::S3Writer;
use crate::error::{Error, Result};
use crate::net::with_retries;
use crate::net::RequestError;
use crate::object_crc::ObjectCrc;
use crate::sink::s3::part::{get_range, MIN_PART_SIZE};
use crate::sink::s3::shared::Published;
use crate::sink::{Assembled, Chunk, Holders, Origin, TarballWriter};

/// Bytes of the body's end pushed into the tail at a time.
const REPEAT_PIECE: usize = 1 << 20;

/// A sealed body: the object at the staging key, how its bytes reached
/// the store, and how many of its last bytes the tail's assembly took again.
pub(super) struct Body {
    object: Arc<Published>,
    assembled: Assembled,
    again: u64,
}

impl S3Writer {
    /// Seals the body: every part uploaded or copied, the upload completed
    /// at the staging key and published; the final key's upload started
    /// with the body's parts copied into it, but for its last 5 MiB or so:
    /// those are read back and go first into the tail, as a run of bytes
    /// this tarball holds (copied, not sent), so that the short repeats
    /// and headers after them can be joined to its end as other tarballs'
    /// short runs are (see [`Assembly`]).
    pub(super) async fn seal(&mut self) -> Result<()> {
        self.upload_closed().await?;
        self.copy_all().await?;
        let body_assembled = self.assembled().unwrap_or_default();
        let (staged, _) = self.complete_staged().await?;
        let final_id = self.start_final().await?;
        let (mut keep, mut end) = (self.part_crcs.len(), 0);
        while keep > 0 && end < MIN_PART_SIZE {
            keep -= 1;
            end += self.part_crcs[keep].1.len;
        }
        let whole = self.part_crcs[..keep].to_vec();
        let copied = self.copy_staged(&staged, &final_id, &whole).await?;
        self.part_crcs.truncate(keep);
        self.parts = copied;
        self.key = self.final_key.clone();
        self.upload_id = Some(final_id);
        self.body = Some(Body {
            object: staged,
            assembled: body_assembled,
            again: end,
        });
        let temps = body_assembled.temporary_objects as usize;
        let copies = self.shared.copies();
        self.assembly = self.assembly.after(keep as u64, temps, copies);
        let start = self.crc.len - end;
        let mut bytes = self.get_body(start, end as usize).await?;
        let mut closed = Vec::new();
        let mut at = start;
        // In pieces, where a chain may be cut (see `Chain::cut`).
        while !bytes.is_empty() {
            let piece = bytes.split_to(bytes.len().min(REPEAT_PIECE));
            let held = Holders::only(Origin {
                tarball: self.index,
                offset: at,
            });
            at += piece.len() as u64;
            let chunk = Chunk {
                crc: ObjectCrc::of(&piece),
                bytes: piece,
                held,
            };
            let pushed = self.assembly.push(chunk, &mut closed);
            pushed.map_err(|e| self.too_large(e))?;
        }
        self.start(closed).await?;
        tracing::debug!(url = %self.url, body = self.crc.len, copied_parts = keep, again = end, "body sealed");
        Ok(())
    }

    /// Bytes `start..start + len` of the sealed body.
    pub(super) async fn get_body(&mut self, start: u64, len: usize) -> Result<Bytes> {
        let Some(body) = self.body.as_ref().map(|b| b.object.clone()) else {
            return Err(Error::internal(format!(
                "{}: read back before its body was sealed",
                self.url
            )));
        };
        let what = format!("GetObject {} (bytes {start}+{len})", body.url);
        let (s, range) = (
            &self.shared,
            (body.key.as_str(), body.etag.as_deref(), start, len as u64),
        );
        let got = with_retries(&s.settings.retry, &what, || async {
            let stream = get_range(&s.client, &s.at.bucket, range).await?;
            let data = stream
                .collect()
                .await
                .map_err(|e| RequestError::Retry(format!("reading the body: {e}")))?;
            let bytes = data.into_bytes();
            if bytes.len() != len {
                return Err(RequestError::Retry(format!(
                    "{} bytes came, not {len}",
                    bytes.len()
                )));
            }
            Ok(bytes)
        })
        .await;
        got.map_err(|e| self.fail(e.into_error(&what)))
    }

    /// How the body reached the store, once sealed, added to the tail's.
    pub(super) fn with_body(&self, tail: Assembled) -> Assembled {
        let Some(Body {
            assembled: body,
            again,
            ..
        }) = &self.body
        else {
            return tail;
        };
        // The body's end went through the tail's assembly again: its
        // bytes are counted once (as the body's).
        let again_sent = again.saturating_sub(tail.copied_bytes);
        Assembled {
            sent_bytes: body.sent_bytes + tail.sent_bytes - again_sent,
            copied_bytes: body.copied_bytes + tail.copied_bytes + again_sent - again,
            copied_ranges: body.copied_ranges + tail.copied_ranges,
            temporary_objects: body.temporary_objects + tail.temporary_objects,
        }
    }

    /// Whether this writer can read its bytes back: only from a staging
    /// key (a ZIP archive or a tarball others copy from, where the store
    /// copies), whose upload can be completed there first.
    pub(super) fn reads_back(&self) -> bool {
        self.body.is_some() || self.key != self.final_key
    }
}
