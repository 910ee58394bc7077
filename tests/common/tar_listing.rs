//! Lists a tar stream with the `tar` crate, a reader independent of
//! rockpack's own: the one listing helper for every check of what rockpack
//! and the fixture generator write. The integration tests get it as
//! `common::tar_listing`; the library's unit tests include this same file
//! (`#[path]` in src/lib.rs), so it exists once.

use std::io::Read;

/// One member as the tar crate reads it (PAX records applied).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TarEntry {
    /// The name, as stored (`./lib/x`, `dir/` for a directory).
    pub path: String,
    /// The header's type flag (`b'0'` file, `b'5'` directory, ...).
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub uname: Option<String>,
    /// Symlink or hardlink target.
    pub link: Option<String>,
    pub size: u64,
    pub data: Vec<u8>,
    /// The PAX `mtime` record, as written.
    pub pax_mtime: Option<String>,
}

/// Every member of the tar stream `reader` holds, in order. Panics on a
/// stream the tar crate cannot read: the callers are tests.
pub fn tar_entries(reader: impl Read) -> Vec<TarEntry> {
    let mut ar = tar::Archive::new(reader);
    let mut out = Vec::new();
    for e in ar.entries().expect("a tar stream") {
        let mut e = e.expect("a tar member");
        let pax_mtime = e.pax_extensions().expect("PAX records").and_then(|exts| {
            exts.map(|x| x.expect("a PAX record"))
                .find(|x| x.key() == Ok("mtime"))
                .map(|x| x.value().expect("UTF-8 mtime").to_string())
        });
        let h = e.header().clone();
        let text = |b: std::borrow::Cow<[u8]>| String::from_utf8(b.into_owned()).expect("UTF-8");
        let path = text(e.path_bytes());
        let link = e.link_name_bytes().map(text);
        let mut data = Vec::new();
        e.read_to_end(&mut data).expect("member data");
        out.push(TarEntry {
            path,
            typeflag: h.entry_type().as_byte(),
            mode: h.mode().expect("mode"),
            uid: h.uid().expect("uid"),
            uname: h.username().expect("UTF-8 user name").map(String::from),
            link,
            size: e.size(),
            data,
            pax_mtime,
        });
    }
    out
}
