//! A strict streaming tar reader.
//!
//! It applies PAX (and GNU long-name) records to the header that follows,
//! bounds every record it buffers, verifies checksums, refuses size
//! disagreements that would put a naive reader out of step, and requires
//! the end-of-archive marker, so a truncated stream is never taken as a
//! shorter archive.

use std::io::{self, BufRead, Read};

use super::tar_header::{apply_pax, cstr, cstr_end, parse_numeric, set, verify_checksum, Pending};
use super::tarfmt::BLOCK;
use crate::error::{Error, Kind, SourceFailure};

/// Largest PAX or GNU long-name record set buffered for one member.
pub const MAX_EXTENDED_HEADER: u64 = 1 << 20;

/// A member header with PAX records applied.
#[derive(Debug, Default)]
pub struct Member {
    /// From PAX `path`, a GNU long name or ustar prefix and name; a
    /// directory's trailing slashes removed.
    pub path: Vec<u8>,
    /// Link target (PAX `linkpath` or GNU long link first); empty when none.
    pub link: Vec<u8>,
    /// The raw typeflag.
    pub typeflag: u8,
    /// Mode bits as stored (set-id bits included).
    pub mode: u32,
    /// Data size in bytes (PAX `size` first); 0 for all but regular files.
    pub size: u64,
    /// Seconds since the epoch; a fractional PAX `mtime` is floored.
    pub mtime: i64,
}

impl Member {
    pub(crate) fn type_name(&self) -> &'static str {
        match self.typeflag {
            b'0' | 0 | b'7' => "regular file",
            b'1' => "hardlink",
            b'2' => "symlink",
            b'3' => "character device",
            b'4' => "block device",
            b'5' => "directory",
            b'6' => "fifo",
            b'S' => "GNU sparse file",
            b'V' => "GNU volume header",
            b'M' => "GNU multi-volume continuation",
            b'D' => "GNU dump directory",
            _ => "unknown member type",
        }
    }
}

/// A reader error: what went wrong and, when known, at which member.
#[derive(Debug)]
pub struct TarError {
    /// Path of the member being read, when the error concerns one.
    pub member: Option<Vec<u8>>,
    /// What is wrong, for messages.
    pub message: String,
    /// [`Kind::Malformed`], or the kind of a failure below the reader (a
    /// download given up, a digest mismatch, a stream over its limit) that
    /// surfaced as a read error.
    pub kind: Kind,
}

impl TarError {
    fn new(member: Option<&[u8]>, message: impl Into<String>) -> Self {
        TarError {
            member: member.map(<[u8]>::to_vec),
            message: message.into(),
            kind: Kind::Malformed,
        }
    }

    /// The run's error for this problem in `artifact`.
    pub fn into_error(self, artifact: &str) -> Error {
        Error::artifact_kind(self.kind, artifact, self.member.as_deref(), self.message)
    }

    /// A read error of the stream below, keeping its kind.
    fn read(member: Option<&[u8]>, e: &io::Error) -> Self {
        TarError {
            kind: SourceFailure::kind_of(e).unwrap_or(Kind::Malformed),
            ..TarError::new(member, format!("read error: {e}"))
        }
    }
}

/// A streaming reader of one tar archive (ustar, PAX and GNU long names):
/// members in order, each member's data read or skipped in place.
pub struct TarReader<R> {
    inner: R,
    /// Unread data bytes of the current member, then its padding.
    remaining: u64,
    padding: usize,
    /// The current member's path, for messages.
    current: Vec<u8>,
    finished: bool,
    /// Reused across members (no allocation per entry): the records of an
    /// extended header, and what they say about the next member.
    ext: Vec<u8>,
    pending: Pending,
}

impl<R: Read> TarReader<R> {
    /// A reader positioned before the first member of `inner`.
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            remaining: 0,
            padding: 0,
            current: Vec::new(),
            finished: false,
            ext: Vec::new(),
            pending: Pending::default(),
        }
    }

    /// The next member, or None after the end-of-archive marker. The
    /// previous member's unread data is skipped.
    pub fn next_member(&mut self) -> Result<Option<Member>, TarError> {
        let mut m = Member::default();
        Ok(self.next_member_into(&mut m)?.then_some(m))
    }

    /// `next_member` into `m`, reusing its buffers: false after the
    /// end-of-archive marker.
    pub fn next_member_into(&mut self, m: &mut Member) -> Result<bool, TarError> {
        if self.finished {
            return Ok(false);
        }
        self.skip_rest()?;
        self.pending.reset();
        loop {
            let mut block = [0u8; BLOCK];
            let after = (!self.current.is_empty()).then_some(self.current.as_slice());
            match read_full(&mut self.inner, &mut block) {
                Ok(true) => {}
                Ok(false) => {
                    return Err(TarError::new(
                        after,
                        "archive ends without the end-of-archive marker (truncated?)",
                    ));
                }
                Err(e) => return Err(TarError::read(after, &e)),
            }
            if block.iter().all(|&b| b == 0) {
                if self.pending.from_pax || self.pending.from_gnu {
                    return Err(TarError::new(
                        after,
                        "extended header is not followed by a member",
                    ));
                }
                // A second zero block completes the marker; a stream that
                // ends right after the first one is tolerated, as GNU tar does.
                let mut second = [0u8; BLOCK];
                match read_full(&mut self.inner, &mut second) {
                    Ok(true) if second.iter().any(|&b| b != 0) => {
                        return Err(TarError::new(after, "a zero block is followed by data"));
                    }
                    Ok(_) => {}
                    Err(e) => return Err(TarError::read(after, &e)),
                }
                self.finished = true;
                self.drain_padding()?;
                return Ok(false);
            }
            let raw_name = cstr(&block[0..100]);
            verify_checksum(&block).map_err(|m| TarError::new(Some(raw_name), m))?;
            let magic = &block[257..265];
            if magic != b"ustar\x0000" && magic != b"ustar  \x00" {
                return Err(TarError::new(
                    Some(raw_name),
                    "not a ustar/pax header (old or unknown tar format)",
                ));
            }
            // In GNU headers bytes 345.. hold times (atime, ctime), not the
            // ustar name prefix: GNU tar ignores them for the name, Python's
            // tarfile prepends them. Readers would disagree on the path.
            if magic == b"ustar  \x00" && block[345] != 0 {
                return Err(TarError::new(
                    Some(raw_name),
                    "GNU header with data where ustar keeps the name prefix (readers disagree on the path)",
                ));
            }
            let typeflag = block[156];
            let header_size = parse_numeric(&block[124..136])
                .map_err(|m| TarError::new(Some(raw_name), format!("size field: {m}")))?;
            match typeflag {
                b'x' => {
                    let p = &self.pending;
                    if p.from_pax {
                        return Err(TarError::new(
                            Some(raw_name),
                            "two PAX headers for one member",
                        ));
                    }
                    if p.from_gnu {
                        return Err(TarError::new(
                            Some(raw_name),
                            "a PAX header follows a GNU long-name entry",
                        ));
                    }
                    self.read_extended(header_size, raw_name)?;
                    apply_pax(&self.ext, &mut self.pending)
                        .map_err(|m| TarError::new(Some(raw_name), m))?;
                    self.pending.from_pax = true;
                }
                b'g' => {
                    return Err(TarError::new(
                        Some(raw_name),
                        "global PAX headers are not supported",
                    ))
                }
                b'L' | b'K' => {
                    if self.pending.from_pax {
                        return Err(TarError::new(
                            Some(raw_name),
                            "a GNU long-name entry follows a PAX header (ambiguous name)",
                        ));
                    }
                    let twice = if typeflag == b'L' {
                        self.pending.has_path
                    } else {
                        self.pending.has_link
                    };
                    if twice {
                        return Err(TarError::new(
                            Some(raw_name),
                            "two GNU long-name entries for one member",
                        ));
                    }
                    self.read_extended(header_size, raw_name)?;
                    let name = cstr_end(&self.ext);
                    let p = &mut self.pending;
                    if typeflag == b'L' {
                        set(&mut p.path, &mut p.has_path, name);
                    } else {
                        set(&mut p.link, &mut p.has_link, name);
                    }
                    p.from_gnu = true;
                }
                _ => {
                    self.finish_member(&block, typeflag, header_size, m)?;
                    return Ok(true);
                }
            }
        }
    }

    fn finish_member(
        &mut self,
        block: &[u8; BLOCK],
        typeflag: u8,
        header_size: u64,
        m: &mut Member,
    ) -> Result<(), TarError> {
        let p = &self.pending;
        m.path.clear();
        if p.has_path {
            m.path.extend_from_slice(&p.path);
        } else {
            let name = cstr(&block[0..100]);
            let prefix = cstr(&block[345..500]);
            if !prefix.is_empty() {
                m.path.extend_from_slice(prefix);
                m.path.push(b'/');
            }
            m.path.extend_from_slice(name);
        }
        m.link.clear();
        m.link.extend_from_slice(if p.has_link {
            &p.link
        } else {
            cstr(&block[157..257])
        });
        let err = |path: &[u8], m: String| TarError::new(Some(path), m);
        if m.path.contains(&0) || m.link.contains(&0) {
            return Err(err(&m.path, "NUL byte in a name".into()));
        }
        let size = match p.size {
            // Python and GNU tar write 0 (or the same value) in the ustar
            // field when a PAX size is present; anything else is an attempt
            // to make readers disagree on where the next header starts.
            Some(pax) if header_size != 0 && header_size != pax => {
                return Err(err(
                    &m.path,
                    format!("PAX size {pax} disagrees with header size {header_size}"),
                ));
            }
            Some(pax) => pax,
            None => header_size,
        };
        let mode = parse_numeric(&block[100..108])
            .map_err(|e| err(&m.path, format!("mode field: {e}")))? as u32;
        let mtime = match p.mtime {
            Some(t) => t,
            None => parse_numeric(&block[136..148])
                .map_err(|e| err(&m.path, format!("mtime field: {e}")))? as i64,
        };
        let carries_data = matches!(typeflag, b'0' | 0 | b'7');
        if !carries_data && size != 0 {
            return Err(err(
                &m.path,
                format!("a {} member with {size} bytes of data", type_name(typeflag)),
            ));
        }
        if typeflag == b'5' {
            while m.path.len() > 1 && m.path.last() == Some(&b'/') {
                m.path.pop();
            }
        }
        (m.typeflag, m.mode, m.size, m.mtime) = (typeflag, mode, size, mtime);
        self.remaining = size;
        self.padding = super::tarfmt::padding(size);
        self.current.clear();
        self.current.extend_from_slice(&m.path);
        Ok(())
    }

    /// Reads an extended header's records into `self.ext`.
    fn read_extended(&mut self, size: u64, name: &[u8]) -> Result<(), TarError> {
        if size > MAX_EXTENDED_HEADER {
            return Err(TarError::new(
                Some(name),
                format!(
                    "extended header of {size} bytes exceeds the {MAX_EXTENDED_HEADER}-byte limit"
                ),
            ));
        }
        // Name the member before the extended header: the one it describes
        // is not known yet.
        let at = if self.current.is_empty() {
            name
        } else {
            &self.current
        };
        self.ext.clear();
        self.ext.resize(size as usize, 0);
        read_exact_or(&mut self.inner, &mut self.ext, at)?;
        let mut pad = [0u8; BLOCK];
        read_exact_or(
            &mut self.inner,
            &mut pad[..super::tarfmt::padding(size)],
            at,
        )
    }

    /// Reads the current member's data.
    pub fn read_data(&mut self, buf: &mut [u8]) -> Result<usize, TarError> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self
            .inner
            .read(&mut buf[..want])
            .map_err(|e| TarError::read(Some(&self.current), &e))?;
        if n == 0 {
            return Err(truncated(&self.current, self.remaining));
        }
        self.remaining -= n as u64;
        Ok(n)
    }

    fn skip_rest(&mut self) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while self.remaining > 0 {
            self.read_data(&mut buf)?;
        }
        if self.padding > 0 {
            let mut pad = [0u8; BLOCK];
            read_exact_or(&mut self.inner, &mut pad[..self.padding], &self.current)?;
            self.padding = 0;
        }
        Ok(())
    }

    /// After the marker only zero padding may follow; reading to the end also
    /// lets the decoder and digest check the whole stream.
    fn drain_padding(&mut self) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        loop {
            let n = self.inner.read(&mut buf).map_err(|e| TarError {
                message: format!("read error after the end-of-archive marker: {e}"),
                ..TarError::read(None, &e)
            })?;
            if n == 0 {
                return Ok(());
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(TarError::new(None, "data after the end-of-archive marker"));
            }
        }
    }

    /// Gives back the underlying reader, wherever reading stopped.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: BufRead> TarReader<R> {
    /// The current member's next data bytes, borrowed from the reader's
    /// buffer (no copy), at most what is left of the member; empty at its
    /// end. Pass how many were used to [`TarReader::consume_data`].
    pub fn data_buf(&mut self) -> Result<&[u8], TarError> {
        if self.remaining == 0 {
            return Ok(&[]);
        }
        let (current, remaining) = (&self.current, self.remaining);
        match self.inner.fill_buf() {
            Ok([]) => Err(truncated(current, remaining)),
            Ok(buf) => Ok(&buf[..buf.len().min(remaining.min(usize::MAX as u64) as usize)]),
            Err(e) => Err(TarError::read(Some(current), &e)),
        }
    }

    /// Marks `n` bytes of [`TarReader::data_buf`] as used.
    pub fn consume_data(&mut self, n: usize) {
        debug_assert!(n as u64 <= self.remaining);
        self.inner.consume(n);
        self.remaining -= n as u64;
    }
}

fn read_exact_or(inner: &mut impl Read, buf: &mut [u8], name: &[u8]) -> Result<(), TarError> {
    inner.read_exact(buf).map_err(|e| {
        // A decoder's own error (it carries a message) says more than ours.
        if e.kind() == io::ErrorKind::UnexpectedEof && e.get_ref().is_none() {
            TarError::new(Some(name), "archive truncated inside a member")
        } else {
            TarError::read(Some(name), &e)
        }
    })
}

fn truncated(member: &[u8], remaining: u64) -> TarError {
    TarError::new(
        Some(member),
        format!("archive truncated: {remaining} bytes of member data missing"),
    )
}

fn type_name(typeflag: u8) -> &'static str {
    Member {
        typeflag,
        ..Default::default()
    }
    .type_name()
}

/// Fills `buf` entirely; Ok(false) on a clean EOF before the first byte.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated tar header",
                ))
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repack::tarfmt::{self, Header, Kind};

    fn header(path: &[u8], size: u64, extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let h = Header {
            path,
            kind: Kind::File,
            mode: 0o644,
            size,
            mtime: 5,
            link: b"",
            uid: 1,
            gid: 1,
            uname: "u",
            gname: "g",
        };
        tarfmt::write_header(&mut out, &h, extra);
        out
    }

    type Listing = Vec<(Vec<u8>, Vec<u8>)>;

    fn members(bytes: &[u8]) -> Result<Listing, TarError> {
        let mut r = TarReader::new(bytes);
        let mut out = Vec::new();
        while let Some(m) = r.next_member()? {
            let mut data = vec![0; m.size as usize];
            let mut got = 0;
            while got < data.len() {
                got += r.read_data(&mut data[got..])?;
            }
            out.push((m.path, data));
        }
        Ok(out)
    }

    #[test]
    fn reads_pax_members() {
        let mut t = header(b"a", 3, &[("mtime", b"1700000000.5")]);
        t.extend_from_slice(b"abc");
        tarfmt::pad_to_block(&mut t);
        let long = vec![b'x'; 300];
        t.extend(header(&long, 0, &[]));
        t.extend_from_slice(&[0; 1024]);
        let m = members(&t).unwrap();
        assert_eq!(m[0], (b"a".to_vec(), b"abc".to_vec()));
        assert_eq!(m[1].0, long);
    }

    #[test]
    fn missing_marker_is_truncation() {
        let mut t = header(b"a", 0, &[]);
        let e = members(&t).unwrap_err();
        assert!(e.message.contains("end-of-archive"), "{}", e.message);
        t.extend_from_slice(&[0; 512]);
        assert!(members(&t).is_ok());
    }

    #[test]
    fn size_disagreement_is_refused() {
        let mut t = header(b"a", 3, &[("size", b"1024")]);
        t.extend_from_slice(&[0; 2048]);
        let e = members(&t).unwrap_err();
        assert!(e.message.contains("disagrees"), "{}", e.message);
    }

    #[test]
    fn gnu_header_with_prefix_is_refused() {
        let mut t = header(b"x", 0, &[]);
        t[257..265].copy_from_slice(b"ustar  \0");
        t[345..356].copy_from_slice(b"zzbad/stage");
        t[148..156].copy_from_slice(b"        ");
        let sum: u32 = t.iter().map(|&b| b as u32).sum();
        t[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        t.extend_from_slice(&[0; 1024]);
        let e = members(&t).unwrap_err();
        assert!(e.message.contains("readers disagree"), "{}", e.message);
        // With the prefix field empty, a GNU header is read as usual.
        t[345..356].fill(0);
        t[148..156].copy_from_slice(b"        ");
        let sum: u32 = t[..512].iter().map(|&b| b as u32).sum();
        t[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert_eq!(members(&t).unwrap()[0].0, b"x");
    }

    #[test]
    fn short_data_is_truncation() {
        let mut t = header(b"a", 5000, &[]);
        t.extend_from_slice(&[1; 100]);
        let e = members(&t).unwrap_err();
        assert!(e.message.contains("truncated"), "{}", e.message);
    }
}
