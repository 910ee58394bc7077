//! The fields of a tar header block and of PAX records: checksums, octal
//! and base-256 numbers, NUL-padded names, and what extended headers say
//! about the next member. The reader (`tar_reader`) walks the stream; this
//! is what it asks of each block.

use super::tarfmt::BLOCK;

/// What extended headers said about the next member. The buffers are kept
/// from member to member; the flags say which were set.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) path: Vec<u8>,
    pub(super) has_path: bool,
    pub(super) link: Vec<u8>,
    pub(super) has_link: bool,
    pub(super) size: Option<u64>,
    pub(super) mtime: Option<i64>,
    pub(super) from_pax: bool,
    pub(super) from_gnu: bool,
}

impl Pending {
    pub(super) fn reset(&mut self) {
        self.path.clear();
        self.link.clear();
        (self.has_path, self.has_link) = (false, false);
        (self.size, self.mtime) = (None, None);
        (self.from_pax, self.from_gnu) = (false, false);
    }
}

pub(super) fn set(buf: &mut Vec<u8>, flag: &mut bool, value: &[u8]) {
    buf.clear();
    buf.extend_from_slice(value);
    *flag = true;
}

/// A NUL-padded name: up to its trailing NULs.
pub(super) fn cstr_end(data: &[u8]) -> &[u8] {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &data[..end]
}

pub(super) fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

pub(super) fn verify_checksum(block: &[u8; BLOCK]) -> Result<(), String> {
    let stored = parse_numeric(&block[148..156]).map_err(|m| format!("checksum field: {m}"))?;
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += b as u64;
        signed += b as i8 as i64;
    }
    if stored == unsigned || stored as i64 == signed {
        Ok(())
    } else {
        Err(format!(
            "header checksum mismatch (stored {stored}, computed {unsigned})"
        ))
    }
}

/// Octal (space/NUL terminated) or GNU base-256 numeric field.
pub(super) fn parse_numeric(field: &[u8]) -> Result<u64, String> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field[0] & 0x40 != 0 {
            return Err("negative base-256 value".into());
        }
        let mut v: u64 = (field[0] & 0x3f) as u64;
        for &b in &field[1..] {
            v = v
                .checked_mul(256)
                .ok_or("base-256 value overflows")?
                .checked_add(b as u64)
                .ok_or("overflow")?;
        }
        return Ok(v);
    }
    let s = std::str::from_utf8(cstr(field))
        .map_err(|_| "not ASCII".to_string())?
        .trim();
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| format!("invalid octal number {s:?}"))
}

/// Parses "<len> <key>=<value>\n" records strictly.
pub(super) fn apply_pax(mut data: &[u8], p: &mut Pending) -> Result<(), String> {
    while !data.is_empty() {
        let sp = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record (no length)")?;
        let len: usize = std::str::from_utf8(&data[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("malformed PAX record length")?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return Err("malformed PAX record (bad length)".into());
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or("malformed PAX record (no '=')")?;
        let (key, value) = (&rec[..eq], &rec[eq + 1..]);
        let num = |what: &str| -> Result<&str, String> {
            std::str::from_utf8(value).map_err(|_| format!("PAX {what} is not text"))
        };
        match key {
            b"path" => set(&mut p.path, &mut p.has_path, value),
            b"linkpath" => set(&mut p.link, &mut p.has_link, value),
            b"size" => {
                p.size = Some(
                    num("size")?
                        .parse()
                        .map_err(|_| "PAX size is not a number".to_string())?,
                );
            }
            b"mtime" => {
                let s = num("mtime")?;
                let secs: f64 = s
                    .parse()
                    .map_err(|_| "PAX mtime is not a number".to_string())?;
                if !secs.is_finite() {
                    return Err("PAX mtime is not finite".into());
                }
                p.mtime = Some(secs.floor() as i64);
            }
            k if k.starts_with(b"GNU.sparse") => {
                return Err("GNU sparse files are not supported".into())
            }
            _ => {} // atime, ctime, uid, gid, uname, gname, charset, …: not carried over
        }
        data = &data[len..];
    }
    Ok(())
}
