//! Low-level tar header encoding: ustar headers, with a PAX extended header
//! in front whenever a field does not fit (long names, long link targets,
//! sizes over 8 GiB, out-of-range mtimes) or the caller asks for records.

/// Size of a tar block.
pub const BLOCK: usize = 512;

/// The two zero blocks that end a tar archive.
pub const END_OF_ARCHIVE: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// Member types rockpack reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file (typeflag `0`).
    File,
    /// A directory (`5`).
    Dir,
    /// A symbolic link (`2`).
    Symlink,
    /// A hard link to an earlier member of the same archive (`1`).
    Hardlink,
}

impl Kind {
    fn typeflag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::Hardlink => b'1',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Hardlink => "hardlink",
        }
    }
}

/// Everything needed to encode one member's header.
#[derive(Clone, Debug)]
pub struct Header<'a> {
    /// Member path without a trailing slash; one is added for directories.
    pub path: &'a [u8],
    /// Member type.
    pub kind: Kind,
    /// Mode bits; only the low 12 (permissions, set-id, sticky) are written.
    pub mode: u32,
    /// Data size; ignored (written as 0) for anything but regular files.
    pub size: u64,
    /// Seconds since the epoch; outside the ustar field's range it goes to
    /// a PAX record.
    pub mtime: i64,
    /// Link target for symlinks and hardlinks.
    pub link: &'a [u8],
    /// Owner's user id (a PAX record when over the ustar field).
    pub uid: u64,
    /// Owner's group id, likewise.
    pub gid: u64,
    /// Owner's user name; truncated to 31 bytes.
    pub uname: &'a str,
    /// Owner's group name; truncated to 31 bytes.
    pub gname: &'a str,
}

const OCTAL_11_MAX: u64 = 0o77777777777; // largest value of an 11-digit octal field

/// Appends the header blocks for `h` to `out`: an optional PAX `x` header with
/// its records, then the ustar header. `extra_pax` records are always written
/// (the fixture generator uses this to write fractional mtimes like Python).
pub fn write_header(out: &mut Vec<u8>, h: &Header<'_>, extra_pax: &[(&str, &[u8])]) {
    let size = if h.kind == Kind::File { h.size } else { 0 };
    let mut name_buf;
    let name: &[u8] = if h.kind == Kind::Dir && !h.path.ends_with(b"/") {
        name_buf = Vec::with_capacity(h.path.len() + 1);
        name_buf.extend_from_slice(h.path);
        name_buf.push(b'/');
        &name_buf
    } else {
        h.path
    };
    let split = split_name(name);
    let mtime_fits = (0..=OCTAL_11_MAX as i64).contains(&h.mtime);
    let needs_pax = split.is_none()
        || h.link.len() > 100
        || size > OCTAL_11_MAX
        || !mtime_fits
        || h.uid > 0o7777777
        || h.gid > 0o7777777
        || !extra_pax.is_empty();
    if needs_pax {
        let mut records = Vec::new();
        let has = |k: &str| extra_pax.iter().any(|(key, _)| *key == k);
        if split.is_none() && !has("path") {
            push_pax_record(&mut records, "path", name);
        }
        if h.link.len() > 100 && !has("linkpath") {
            push_pax_record(&mut records, "linkpath", h.link);
        }
        if size > OCTAL_11_MAX && !has("size") {
            push_pax_record(&mut records, "size", size.to_string().as_bytes());
        }
        if !mtime_fits && !has("mtime") {
            push_pax_record(&mut records, "mtime", h.mtime.to_string().as_bytes());
        }
        if h.uid > 0o7777777 && !has("uid") {
            push_pax_record(&mut records, "uid", h.uid.to_string().as_bytes());
        }
        if h.gid > 0o7777777 && !has("gid") {
            push_pax_record(&mut records, "gid", h.gid.to_string().as_bytes());
        }
        for (k, v) in extra_pax {
            push_pax_record(&mut records, k, v);
        }
        let pax = Header {
            path: b"././@PaxHeader",
            kind: Kind::File,
            mode: 0o644,
            size: records.len() as u64,
            mtime: 0,
            link: b"",
            uid: 0,
            gid: 0,
            uname: "",
            gname: "",
        };
        let at = out.len();
        encode_ustar(out, &pax, (b"", b"././@PaxHeader"), b'x');
        let _ = at;
        out.extend_from_slice(&records);
        pad_to_block(out);
    }
    // Fields that did not fit are truncated in the ustar header; the PAX
    // record in front of it is authoritative.
    let (prefix, short) = split.unwrap_or((b"", truncate(name, 100)));
    let fitted = Header {
        size: size.min(OCTAL_11_MAX),
        mtime: h.mtime.clamp(0, OCTAL_11_MAX as i64),
        link: truncate(h.link, 100),
        uid: h.uid.min(0o7777777),
        gid: h.gid.min(0o7777777),
        ..h.clone()
    };
    encode_ustar(out, &fitted, (prefix, short), h.kind.typeflag());
}

/// Pads `out` with zeros to the next block boundary.
pub fn pad_to_block(out: &mut Vec<u8>) {
    let rem = out.len() % BLOCK;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

/// Number of padding bytes that follow `size` bytes of member data.
pub fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}

/// Splits a name into ustar (prefix, name) fields, or None when it cannot fit.
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((b"", name));
    }
    if name.len() > 256 {
        return None;
    }
    // The prefix must end at a '/' that is not the last byte, be at most 155
    // bytes, and leave at most 100 bytes for the name.
    let start = name.len().saturating_sub(101);
    for i in start..name.len().min(156) {
        if name[i] == b'/' && i + 1 < name.len() && name.len() - i - 1 <= 100 && i <= 155 {
            return Some((&name[..i], &name[i + 1..]));
        }
    }
    None
}

/// One PAX record: "<len> <key>=<value>\n", where len counts itself.
pub fn push_pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    loop {
        let total = body + decimal_digits(len);
        if total == len {
            break;
        }
        len = total;
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn decimal_digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn encode_ustar(out: &mut Vec<u8>, h: &Header<'_>, (prefix, name): (&[u8], &[u8]), typeflag: u8) {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], (h.mode & 0o7777) as u64);
    octal(&mut b[108..116], h.uid);
    octal(&mut b[116..124], h.gid);
    octal(&mut b[124..136], h.size);
    octal(&mut b[136..148], h.mtime as u64);
    b[148..156].copy_from_slice(b"        ");
    b[156] = typeflag;
    b[157..157 + h.link.len()].copy_from_slice(h.link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    let un = truncate(h.uname.as_bytes(), 31);
    b[265..265 + un.len()].copy_from_slice(un);
    let gn = truncate(h.gname.as_bytes(), 31);
    b[297..297 + gn.len()].copy_from_slice(gn);
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    b[345..345 + prefix.len()].copy_from_slice(prefix);
    let sum: u32 = b.iter().map(|&x| x as u32).sum();
    // Checksum: six octal digits, NUL, space (as GNU tar writes it).
    octal(&mut b[148..155], sum as u64);
    b[155] = b' ';
    out.extend_from_slice(&b);
}

/// Writes the low digits of `v` in octal, zero-padded, followed by a NUL
/// (by hand: this runs for every entry, and formatting would allocate).
fn octal(field: &mut [u8], mut v: u64) {
    let (last, digits) = field
        .split_last_mut()
        .expect("a field of at least one byte");
    for d in digits.iter_mut().rev() {
        *d = b'0' + (v & 7) as u8;
        v >>= 3;
    }
    *last = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(path: &[u8], kind: Kind, size: u64, link: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let h = Header {
            path,
            kind,
            mode: 0o755,
            size,
            mtime: 1_700_000_000,
            link,
            uid: 0,
            gid: 0,
            uname: "root",
            gname: "root",
        };
        write_header(&mut out, &h, &[]);
        out
    }

    fn read_back(bytes: Vec<u8>) -> Vec<(String, u64, Option<String>)> {
        let mut ar = tar::Archive::new(std::io::Cursor::new(bytes));
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    String::from_utf8(e.path_bytes().into_owned()).unwrap(),
                    e.size(),
                    e.link_name_bytes()
                        .map(|l| String::from_utf8(l.into_owned()).unwrap()),
                )
            })
            .collect()
    }

    #[test]
    fn pax_record_length_counts_itself() {
        let mut r = Vec::new();
        push_pax_record(&mut r, "path", b"abc");
        assert_eq!(r, b"12 path=abc\n");
        let mut r = Vec::new();
        let v = vec![b'x'; 95];
        push_pax_record(&mut r, "path", &v);
        assert_eq!(r.len(), 105);
        assert!(r.starts_with(b"105 path="));
    }

    #[test]
    fn long_names_and_links_round_trip() {
        let long = "d/".repeat(80) + "file";
        let very_long = "x".repeat(300);
        let link = "t/".repeat(70);
        let mut all = Vec::new();
        all.extend(hdr(long.as_bytes(), Kind::File, 0, b""));
        all.extend(hdr(very_long.as_bytes(), Kind::Symlink, 0, link.as_bytes()));
        all.extend(hdr(b"dir", Kind::Dir, 0, b""));
        all.extend_from_slice(&END_OF_ARCHIVE);
        let got = read_back(all);
        assert_eq!(got[0].0, long);
        assert_eq!(got[1].0, very_long);
        assert_eq!(got[1].2.as_deref(), Some(link.as_str()));
        assert_eq!(got[2].0, "dir/");
    }

    #[test]
    fn huge_size_uses_pax() {
        let out = hdr(b"big", Kind::File, 9 << 30, b"");
        assert_eq!(out.len(), 3 * BLOCK);
        assert_eq!(out[156], b'x');
        let mut ar = tar::Archive::new(std::io::Cursor::new(out));
        let e = ar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.size(), 9 << 30);
    }
}
