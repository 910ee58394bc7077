//! ZIP record bytes (PKWARE APPNOTE 6.3.x) for archives written front to
//! back, never seeked.
//!
//! An archive is, for each entry, [`local_header`] + the entry's data +
//! [`data_descriptor`], then [`central_directory`] once at the end. The
//! local header is written before the data is compressed, so it carries no
//! CRC or sizes (general purpose flag bit 3): the descriptor after the data
//! holds them, and the central directory repeats them for readers that
//! start from the end (all the usual ones: Explorer, 7-Zip, Info-ZIP,
//! libarchive, Python).
//!
//! Every entry is ZIP64-ready: its local header carries a ZIP64 extra field
//! so its descriptor always has 8-byte sizes, since an entry's size is not
//! known when its header is written and may exceed 4 GiB.
//!
//! Directories and empty files are encoded like every other entry: flag
//! bit 3 and a descriptor of zeros after no data: one code path, and
//! Python's `zipfile`, Info-ZIP `unzip`, bsdtar (also reading from a pipe)
//! and 7-Zip accept it (tests/zip_records.rs checks them). Java's
//! `ZipInputStream` refuses stored entries with a descriptor; its `ZipFile`,
//! which reads the central directory, does not.
//!
//! Names are stored as UTF-8 (flag bit 11); times as an MS-DOS date and
//! time (UTC, 1980–2107, 2 s steps) plus an extended-timestamp extra field
//! with the exact Unix mtime. Output depends only on the arguments.

/// Version needed to extract: 4.5, ZIP64.
const VERSION_NEEDED: u16 = 45;
/// Version made by: Unix (3) in the high byte, so readers take the Unix
/// mode from the high half of the external attributes; spec 4.5.
const VERSION_MADE_BY: u16 = (3 << 8) | VERSION_NEEDED;
/// Bit 3: CRC and sizes follow the data; bit 11: the name is UTF-8.
const FLAGS: u16 = (1 << 3) | (1 << 11);

const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
const ZIP64_END_SIG: u32 = 0x0606_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END_SIG: u32 = 0x0605_4b50;

/// Extra field ids: ZIP64 extended information, and Info-ZIP's extended
/// timestamp ("UT").
const ZIP64_EXTRA: u16 = 0x0001;
const TIMESTAMP_EXTRA: u16 = 0x5455;

/// Marker of a 4-byte field whose value is in the ZIP64 extra or record.
const MARK32: u32 = 0xFFFF_FFFF;
/// Marker of a 2-byte entry count whose value is in the ZIP64 end record.
const MARK16: u16 = 0xFFFF;

/// 1980-01-01 00:00:00 UTC and 2107-12-31 23:59:58 UTC: what an MS-DOS
/// date and time can hold.
const DOS_MIN: u64 = 315_532_800;
const DOS_MAX: u64 = 4_354_819_198;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
/// MS-DOS attribute bit of a directory, for readers that ignore the Unix
/// mode (Explorer).
const DOS_DIRECTORY: u32 = 0x10;

/// An empty final fixed-Huffman block (BFINAL=1, BTYPE=01, end-of-block
/// code 256): appended to a raw deflate stream made of sync-flushed blocks,
/// none of which is final: a deflate stream must end with a final block
/// (RFC 1951), or inflaters report it truncated. It inflates to nothing.
pub const END_OF_DEFLATE: [u8; 2] = [0x03, 0x00];

/// What an entry's headers say about it, besides its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryMeta {
    /// Its path in the archive: forward slashes, no leading `./` or `/`;
    /// a directory's ends with `/`. At most 65,535 bytes of UTF-8.
    pub name: String,
    /// Whether it is a directory (stored with no data).
    pub is_dir: bool,
    /// Unix permission bits; any file type bits are replaced with
    /// `S_IFDIR` or `S_IFREG` by `is_dir` (no symlinks or devices).
    pub mode: u32,
    /// Modification time, Unix seconds.
    pub mtime: u64,
}

/// How an entry's data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// As is (method 0).
    Stored,
    /// Raw deflate (method 8).
    Deflated,
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// An entry as the central directory lists it: its headers' fields, what
/// its data descriptor said, and where its local header starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CentralEntry {
    /// Name, type, mode and time, as given to [`local_header`].
    pub meta: EntryMeta,
    /// The method given to [`local_header`].
    pub method: Method,
    /// CRC-32 of the uncompressed data.
    pub crc: u32,
    /// Length of the data as stored in the archive.
    pub compressed: u64,
    /// Length of the data once extracted.
    pub uncompressed: u64,
    /// Offset of its local header from the start of the archive.
    pub offset: u64,
}

/// The local file header that opens an entry; its data and then its
/// [`data_descriptor`] follow. A directory is always [`Method::Stored`],
/// whatever `method` says.
///
/// Panics if the name is longer than 65,535 bytes.
pub fn local_header(meta: &EntryMeta, method: Method) -> Vec<u8> {
    let name = name_bytes(meta);
    let (time, date) = dos_time(meta.mtime);
    let mut extra = Vec::with_capacity(20 + 9);
    // Both sizes, as zeros: tells readers of the local headers alone
    // (streaming readers) that the descriptor has 8-byte sizes. The fixed
    // fields stay 0 as bit 3 asks, so readers that take this extra's sizes
    // only for fixed fields set to 0xFFFFFFFF keep the central directory's
    // sizes rather than these zeros.
    put16(&mut extra, ZIP64_EXTRA);
    put16(&mut extra, 16);
    put64(&mut extra, 0);
    put64(&mut extra, 0);
    timestamp_extra(&mut extra, meta.mtime);

    let mut out = Vec::with_capacity(30 + name.len() + extra.len());
    put32(&mut out, LOCAL_HEADER_SIG);
    put16(&mut out, VERSION_NEEDED);
    put16(&mut out, FLAGS);
    put16(&mut out, effective(meta, method).code());
    put16(&mut out, time);
    put16(&mut out, date);
    put32(&mut out, 0); // CRC, in the descriptor
    put32(&mut out, 0); // compressed size, in the descriptor
    put32(&mut out, 0); // uncompressed size, in the descriptor
    put16(&mut out, name.len() as u16);
    put16(&mut out, extra.len() as u16);
    out.extend_from_slice(name);
    out.extend_from_slice(&extra);
    out
}

/// The data descriptor that follows an entry's data: its CRC-32 and sizes,
/// the sizes always 8 bytes since its local header carried the ZIP64
/// extra field.
pub fn data_descriptor(crc: u32, compressed: u64, uncompressed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    put32(&mut out, DATA_DESCRIPTOR_SIG);
    put32(&mut out, crc);
    put64(&mut out, compressed);
    put64(&mut out, uncompressed);
    out
}

/// Everything after the last entry: the central directory, which starts at
/// `cd_offset` in the archive, and the end records.
///
/// A field too large for its classic slot (an entry's sizes or offset at
/// or over 0xFFFFFFFF, 0xFFFF or more entries, the directory's size or
/// offset at or over 0xFFFFFFFF) holds its marker there and its value in a
/// ZIP64 extra field or the ZIP64 end record. The ZIP64 end record and
/// locator are written when any end field overflows or when any entry
/// needed ZIP64 fields, so that an archive with ZIP64 entries is marked
/// ZIP64 at its end too; the classic end record then keeps every value
/// that fits, for readers that ignore ZIP64 records.
///
/// Panics if a name is longer than 65,535 bytes.
pub fn central_directory(entries: &[CentralEntry], cd_offset: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut any_zip64 = false;
    for e in entries {
        let name = name_bytes(&e.meta);
        let (time, date) = dos_time(e.meta.mtime);
        let mut zip64 = Vec::new();
        // The order APPNOTE 4.5.3 fixes, each only when its field overflows.
        let usize32 = overflow(e.uncompressed, &mut zip64);
        let csize32 = overflow(e.compressed, &mut zip64);
        let offset32 = overflow(e.offset, &mut zip64);
        let mut extra = Vec::new();
        if !zip64.is_empty() {
            any_zip64 = true;
            put16(&mut extra, ZIP64_EXTRA);
            put16(&mut extra, zip64.len() as u16);
            extra.extend_from_slice(&zip64);
        }
        timestamp_extra(&mut extra, e.meta.mtime);

        let mut attrs = (e.meta.mode & 0o7777) << 16;
        if e.meta.is_dir {
            attrs |= (S_IFDIR << 16) | DOS_DIRECTORY;
        } else {
            attrs |= S_IFREG << 16;
        }

        put32(&mut out, CENTRAL_HEADER_SIG);
        put16(&mut out, VERSION_MADE_BY);
        put16(&mut out, VERSION_NEEDED);
        put16(&mut out, FLAGS);
        put16(&mut out, effective(&e.meta, e.method).code());
        put16(&mut out, time);
        put16(&mut out, date);
        put32(&mut out, e.crc);
        put32(&mut out, csize32);
        put32(&mut out, usize32);
        put16(&mut out, name.len() as u16);
        put16(&mut out, extra.len() as u16);
        put16(&mut out, 0); // comment length
        put16(&mut out, 0); // disk number start
        put16(&mut out, 0); // internal attributes
        put32(&mut out, attrs);
        put32(&mut out, offset32);
        out.extend_from_slice(name);
        out.extend_from_slice(&extra);
    }

    let cd_size = out.len() as u64;
    let count = entries.len() as u64;
    let count_overflows = count >= u64::from(MARK16);
    let size_overflows = cd_size >= u64::from(MARK32);
    let offset_overflows = cd_offset >= u64::from(MARK32);
    if any_zip64 || count_overflows || size_overflows || offset_overflows {
        let zip64_end_offset = cd_offset + cd_size;
        put32(&mut out, ZIP64_END_SIG);
        put64(&mut out, 44); // size of the rest of this record
        put16(&mut out, VERSION_MADE_BY);
        put16(&mut out, VERSION_NEEDED);
        put32(&mut out, 0); // this disk
        put32(&mut out, 0); // disk where the central directory starts
        put64(&mut out, count); // entries on this disk
        put64(&mut out, count); // entries in all
        put64(&mut out, cd_size);
        put64(&mut out, cd_offset);

        put32(&mut out, ZIP64_LOCATOR_SIG);
        put32(&mut out, 0); // disk of the ZIP64 end record
        put64(&mut out, zip64_end_offset);
        put32(&mut out, 1); // disks in all
    }
    let count16 = if count_overflows {
        MARK16
    } else {
        count as u16
    };
    let size32 = if size_overflows {
        MARK32
    } else {
        cd_size as u32
    };
    let offset32 = if offset_overflows {
        MARK32
    } else {
        cd_offset as u32
    };
    put32(&mut out, END_SIG);
    put16(&mut out, 0); // this disk
    put16(&mut out, 0); // disk where the central directory starts
    put16(&mut out, count16); // entries on this disk
    put16(&mut out, count16); // entries in all
    put32(&mut out, size32);
    put32(&mut out, offset32);
    put16(&mut out, 0); // comment length
    out
}

/// Directories have no data to compress.
fn effective(meta: &EntryMeta, method: Method) -> Method {
    if meta.is_dir {
        Method::Stored
    } else {
        method
    }
}

fn name_bytes(meta: &EntryMeta) -> &[u8] {
    debug_assert_eq!(
        meta.is_dir,
        meta.name.ends_with('/'),
        "{:?}: a directory's name, and only it, ends with '/'",
        meta.name
    );
    assert!(
        meta.name.len() <= usize::from(u16::MAX),
        "zip entry name of {} bytes: at most 65535 fit",
        meta.name.len()
    );
    meta.name.as_bytes()
}

/// The 4-byte field for `value`: itself, or the marker with the value
/// appended to the ZIP64 extra's fields.
fn overflow(value: u64, zip64: &mut Vec<u8>) -> u32 {
    if value >= u64::from(MARK32) {
        put64(zip64, value);
        MARK32
    } else {
        value as u32
    }
}

/// The extended-timestamp extra field with the modification time only
/// (flags bit 0); the same 9 bytes in local and central headers. Its
/// 32-bit time holds up to 2106 when read as unsigned (Info-ZIP reads
/// times past 2038 by checking them against the DOS date).
fn timestamp_extra(out: &mut Vec<u8>, mtime: u64) {
    put16(out, TIMESTAMP_EXTRA);
    put16(out, 5);
    out.push(1);
    put32(out, u32::try_from(mtime).unwrap_or(u32::MAX));
}

/// MS-DOS (time, date) of a Unix time, in UTC: clamped to the years DOS
/// dates hold, odd seconds rounded down.
fn dos_time(mtime: u64) -> (u16, u16) {
    let t = mtime.clamp(DOS_MIN, DOS_MAX);
    let (days, secs) = (t / 86_400, t % 86_400);
    let (year, month, day) = civil_from_days(days);
    let time = ((secs / 3600) << 11) | ((secs % 3600 / 60) << 5) | (secs % 60 / 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    (time as u16, date as u16)
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01, for
/// days after 0000-03-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn file(name: &str, mtime: u64) -> EntryMeta {
        EntryMeta {
            name: name.to_string(),
            is_dir: false,
            mode: 0o644,
            mtime,
        }
    }

    fn entry(name: &str, size: u64, offset: u64) -> CentralEntry {
        CentralEntry {
            meta: file(name, 1_715_949_297),
            method: Method::Deflated,
            crc: 0x1234_5678,
            compressed: size / 2,
            uncompressed: size,
            offset,
        }
    }

    #[test]
    fn dos_time_of_known_instants() {
        // 2024-05-17 12:34:57 UTC: the odd second rounds down to 56.
        assert_eq!(dos_time(1_715_949_297), (0x645c, 0x58b1));
        // 2000-02-29 01:02:03 UTC, a leap day.
        assert_eq!(dos_time(951_786_123), (0x0841, 0x285d));
        // The first instant DOS holds: 1980-01-01 00:00:00.
        assert_eq!(dos_time(DOS_MIN), (0, (1 << 5) | 1));
    }

    #[test]
    fn dos_time_clamps_to_what_dos_holds() {
        let first = (0, (1 << 5) | 1);
        assert_eq!(dos_time(0), first);
        assert_eq!(dos_time(DOS_MIN - 1), first);
        // 2107-12-31 23:59:58, also for every later time.
        let last = (0xbf7d, 0xff9f);
        assert_eq!(dos_time(DOS_MAX), last);
        assert_eq!(dos_time(DOS_MAX + 1), last);
        assert_eq!(dos_time(u64::MAX), last);
    }

    #[test]
    fn local_header_layout() {
        let meta = file("lib/librocblas.so.4", 1_715_949_297);
        let h = local_header(&meta, Method::Deflated);
        assert_eq!(u32_at(&h, 0), LOCAL_HEADER_SIG);
        assert_eq!(u16_at(&h, 4), 45);
        assert_eq!(u16_at(&h, 6), 0x0808);
        assert_eq!(u16_at(&h, 8), 8);
        assert_eq!((u16_at(&h, 10), u16_at(&h, 12)), (0x645c, 0x58b1));
        assert_eq!(&h[14..26], &[0; 12], "CRC and sizes are in the descriptor");
        let name_len = usize::from(u16_at(&h, 26));
        let extra_len = usize::from(u16_at(&h, 28));
        assert_eq!(name_len, meta.name.len());
        assert_eq!(extra_len, 20 + 9);
        assert_eq!(h.len(), 30 + name_len + extra_len);
        assert_eq!(&h[30..30 + name_len], meta.name.as_bytes());
        let extra = &h[30 + name_len..];
        assert_eq!((u16_at(extra, 0), u16_at(extra, 2)), (ZIP64_EXTRA, 16));
        assert_eq!(&extra[4..20], &[0; 16]);
        assert_eq!((u16_at(extra, 20), u16_at(extra, 22)), (TIMESTAMP_EXTRA, 5));
        assert_eq!(extra[24], 1);
        assert_eq!(u32_at(extra, 25), 1_715_949_297);

        // A directory is stored, whatever the caller asked for.
        let dir = EntryMeta {
            name: "share/doc/".into(),
            is_dir: true,
            mode: 0o755,
            mtime: 0,
        };
        assert_eq!(u16_at(&local_header(&dir, Method::Deflated), 8), 0);
        // A time past 2106 keeps the largest 32-bit time.
        let late = local_header(&file("a", u64::MAX), Method::Stored);
        assert_eq!(u32_at(&late, late.len() - 4), u32::MAX);
    }

    #[test]
    fn data_descriptor_layout() {
        let d = data_descriptor(0xdead_beef, 5 << 32, 7 << 32);
        assert_eq!(d.len(), 24);
        assert_eq!(u32_at(&d, 0), DATA_DESCRIPTOR_SIG);
        assert_eq!(u32_at(&d, 4), 0xdead_beef);
        assert_eq!(u64_at(&d, 8), 5 << 32);
        assert_eq!(u64_at(&d, 16), 7 << 32);
    }

    #[test]
    fn central_header_layout() {
        let dir = CentralEntry {
            meta: EntryMeta {
                name: "bin/".into(),
                is_dir: true,
                mode: 0o40755,
                mtime: 0,
            },
            method: Method::Stored,
            crc: 0,
            compressed: 0,
            uncompressed: 0,
            offset: 0,
        };
        let f = entry("bin/hipcc.bat", 1000, 0x1_0000);
        let cd = central_directory(&[dir, f], 0x2_0000);
        assert_eq!(u32_at(&cd, 0), CENTRAL_HEADER_SIG);
        assert_eq!(u16_at(&cd, 4), 0x032d);
        assert_eq!(u16_at(&cd, 6), 45);
        assert_eq!(u16_at(&cd, 8), 0x0808);
        assert_eq!(u16_at(&cd, 10), 0);
        assert_eq!((u16_at(&cd, 12), u16_at(&cd, 14)), (0, (1 << 5) | 1));
        assert_eq!(u32_at(&cd, 38), (0o40755 << 16) | 0x10);
        // No ZIP64 extra: only the timestamp.
        assert_eq!(u16_at(&cd, 30), 9);
        let second = 46 + 4 + 9;
        assert_eq!(u32_at(&cd, second), CENTRAL_HEADER_SIG);
        assert_eq!(u16_at(&cd, second + 10), 8);
        assert_eq!(u32_at(&cd, second + 16), 0x1234_5678);
        assert_eq!(u32_at(&cd, second + 20), 500);
        assert_eq!(u32_at(&cd, second + 24), 1000);
        assert_eq!(u32_at(&cd, second + 38), 0o100644 << 16);
        assert_eq!(u32_at(&cd, second + 42), 0x1_0000);
        let end = second + 46 + "bin/hipcc.bat".len() + 9;
        // Small: the classic end record alone.
        assert_eq!(cd.len(), end + 22);
        assert_eq!(u32_at(&cd, end), END_SIG);
        assert_eq!((u16_at(&cd, end + 8), u16_at(&cd, end + 10)), (2, 2));
        assert_eq!(u32_at(&cd, end + 12), end as u32);
        assert_eq!(u32_at(&cd, end + 16), 0x2_0000);
        assert_eq!(u16_at(&cd, end + 20), 0);
    }

    #[test]
    fn zip64_extra_holds_only_what_overflows() {
        let big = 5u64 << 32;
        // Uncompressed overflows, compressed fits, offset overflows.
        let e = CentralEntry {
            compressed: 1 << 20,
            ..entry("lib/llvm/lib/libLLVM.so", big, big + 1)
        };
        let cd = central_directory(&[e], big * 2);
        assert_eq!(u32_at(&cd, 20), 1 << 20);
        assert_eq!(u32_at(&cd, 24), MARK32);
        assert_eq!(u32_at(&cd, 42), MARK32);
        let extra = 46 + "lib/llvm/lib/libLLVM.so".len();
        assert_eq!(usize::from(u16_at(&cd, 30)), 4 + 16 + 9);
        assert_eq!((u16_at(&cd, extra), u16_at(&cd, extra + 2)), (1, 16));
        assert_eq!(u64_at(&cd, extra + 4), big);
        assert_eq!(u64_at(&cd, extra + 12), big + 1);
        // Exactly 0xFFFFFFFF is the marker itself, so it overflows too.
        let e = entry("a", u64::from(MARK32), 0);
        let cd = central_directory(&[e], 1);
        assert_eq!(u32_at(&cd, 24), MARK32);
        assert_eq!(u32_at(&cd, 20), MARK32 / 2);
    }

    /// Where the ZIP64 end record starts, if `cd` has one.
    fn zip64_end(cd: &[u8]) -> Option<usize> {
        let end = cd.len() - 22;
        assert_eq!(u32_at(cd, end), END_SIG);
        if end >= 20 && u32_at(cd, end - 20) == ZIP64_LOCATOR_SIG {
            assert_eq!(u32_at(cd, end - 76), ZIP64_END_SIG);
            Some(end - 76)
        } else {
            None
        }
    }

    #[test]
    fn zip64_end_records_exactly_when_needed() {
        let small: Vec<_> = (0..3).map(|i| entry("f", 10, i * 100)).collect();
        assert_eq!(zip64_end(&central_directory(&small, 300)), None);
        assert_eq!(zip64_end(&central_directory(&[], 0)), None);
        // The directory starts at the marker value or later.
        let cd = central_directory(&small, u64::from(MARK32) - 1);
        assert_eq!(zip64_end(&cd), None);
        let cd = central_directory(&small, u64::from(MARK32));
        let z = zip64_end(&cd).expect("ZIP64 for the directory's offset");
        let cd_size = z as u64;
        assert_eq!(u64_at(&cd, z + 4), 44);
        assert_eq!(u64_at(&cd, z + 24), 3);
        assert_eq!(u64_at(&cd, z + 32), 3);
        assert_eq!(u64_at(&cd, z + 40), cd_size);
        assert_eq!(u64_at(&cd, z + 48), u64::from(MARK32));
        // The locator points at the ZIP64 end record.
        assert_eq!(u64_at(&cd, z + 56 + 8), u64::from(MARK32) + cd_size);
        assert_eq!(u32_at(&cd, z + 56 + 16), 1);
        // The classic record keeps what fits and marks what does not.
        let end = z + 76;
        assert_eq!(u16_at(&cd, end + 10), 3);
        assert_eq!(u32_at(&cd, end + 12), cd_size as u32);
        assert_eq!(u32_at(&cd, end + 16), MARK32);

        // An entry with ZIP64 fields, in an archive whose end fits.
        let cd = central_directory(&[entry("f", 5 << 32, 0)], 1 << 30);
        let z = zip64_end(&cd).expect("ZIP64 for an entry's size");
        assert_eq!(u16_at(&cd, z + 76 + 10), 1);
        assert_eq!(u32_at(&cd, z + 76 + 16), 1 << 30);

        // 0xFFFE entries fit; 0xFFFF is the marker.
        let many = |n: usize| -> Vec<CentralEntry> { (0..n).map(|_| entry("f", 0, 0)).collect() };
        assert_eq!(zip64_end(&central_directory(&many(0xFFFE), 1)), None);
        let cd = central_directory(&many(0xFFFF), 1);
        let z = zip64_end(&cd).expect("ZIP64 for the count");
        assert_eq!(u64_at(&cd, z + 32), 0xFFFF);
        assert_eq!(u16_at(&cd, z + 76 + 10), MARK16);
    }

    #[test]
    fn output_depends_on_inputs_only() {
        let es: Vec<_> = (0..50)
            .map(|i| entry(&format!("share/doc/rocm/{i}"), i << 28, i << 29))
            .collect();
        assert_eq!(
            central_directory(&es, 1 << 40),
            central_directory(&es, 1 << 40)
        );
        let m = file("bin/hipcc.bat", 99);
        assert_eq!(
            local_header(&m, Method::Deflated),
            local_header(&m.clone(), Method::Deflated)
        );
    }

    #[test]
    fn end_of_deflate_ends_a_sync_flushed_stream() {
        use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let mut c = Compress::new(Compression::new(6), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(&data, &mut out, FlushCompress::Sync)
            .unwrap();
        assert_eq!(c.total_in(), data.len() as u64);
        out.extend_from_slice(&END_OF_DEFLATE);
        let mut d = Decompress::new(false);
        let mut got = Vec::with_capacity(data.len() + 1);
        let status = d
            .decompress_vec(&out, &mut got, FlushDecompress::Finish)
            .unwrap();
        assert_eq!(status, Status::StreamEnd);
        assert_eq!(got, data);
        assert_eq!(d.total_in(), out.len() as u64);
    }
}
