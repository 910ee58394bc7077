//! What a promote did, as text for the terminal and as `--summary` JSON.

use super::{Action, PromoteSummary};
use crate::sink::StoredChecksum;
use crate::units::human_bytes;

impl PromoteSummary {
    /// One line per tarball, and a total.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let verb = |a: Action| match (self.dry_run, a) {
            (true, Action::Copy) => "would copy",
            (true, Action::Replace) => "would replace",
            (false, Action::Copy) => "copied",
            (false, Action::Replace) => "replaced",
            (_, Action::Present) => "already there",
        };
        for p in &self.tarballs {
            let how = match p.parts {
                None => "CopyObject".to_string(),
                Some(n) => format!("{n} part copies"),
            };
            let checked = p
                .checked
                .map(|c| format!(", checked: {c}"))
                .unwrap_or_default();
            let sidecar = match &p.sidecar {
                Some(s) if !s.present => format!(" + {}", s.name),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "{}: {} -> {}{sidecar} ({}, {how}{checked})",
                verb(p.action),
                p.source.url(),
                p.location,
                human_bytes(p.source.size),
            );
        }
        let copied: u64 = self
            .tarballs
            .iter()
            .filter(|p| p.action != Action::Present)
            .map(|p| p.source.size)
            .sum();
        let _ = writeln!(
            s,
            "{} {} tarball(s), {} inside S3, from {} to {} in {:.1}s",
            if self.dry_run {
                "would promote"
            } else {
                "promoted"
            },
            self.tarballs.len(),
            human_bytes(copied),
            self.source,
            self.dest,
            self.seconds
        );
        s
    }

    /// `--summary FILE`: every tarball with its source, key, URL, size,
    /// checksum and how its copy was checked.
    pub fn json(&self, url: impl Fn(&str) -> Option<String>) -> serde_json::Value {
        let tarballs: Vec<serde_json::Value> = self
            .tarballs
            .iter()
            .map(|p| {
                serde_json::json!({
                    "file_name": p.name.file_name,
                    "label": p.name.label,
                    "bundle": p.name.bundle,
                    "variant": p.name.variant,
                    "format": p.name.format.name(),
                    "source": p.source.url(),
                    "location": p.location,
                    "key": p.key,
                    "url": url(&p.location),
                    "bytes": p.source.size,
                    "checksum": p.source.checksum.as_ref().map(checksum_json),
                    "action": p.action,
                    "parts": p.parts,
                    "checked": p.checked,
                    "sidecar": p.sidecar.as_ref().map(|s| &s.name),
                })
            })
            .collect();
        serde_json::json!({
            "source": self.source,
            "dest": self.dest,
            "dry_run": self.dry_run,
            "seconds": self.seconds,
            "tarballs": tarballs,
        })
    }
}

fn checksum_json(c: &StoredChecksum) -> serde_json::Value {
    serde_json::to_value(c).expect("checksum serialises")
}
