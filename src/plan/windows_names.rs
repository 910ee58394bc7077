//! What Windows cannot hold: archive member paths (forward slashes,
//! relative) that would not extract, or would extract as something else, on
//! Windows. Checked before writing an archive meant for Windows, so a bad
//! name fails the run instead of the user's extraction.
//!
//! [`refusal`] checks one path alone; [`CaseFold`] checks the paths of one
//! archive against each other, since Windows folders are case-insensitive.

use std::collections::HashMap;

/// Windows' MAX_PATH: the longest path the usual extractors (Explorer, and
/// programs not built for long paths) handle, counting the final NUL, in
/// UTF-16 code units.
pub const MAX_PATH: usize = 260;

/// What a path leaves for the folder the user extracts into, with its
/// trailing backslash, e.g. `C:\Users\<name>\Downloads\<archive>\` (9 +
/// 20 + 11 + 19 + 1 units).
pub const EXTRACT_PREFIX_RESERVE: usize = 60;

/// The longest member path, in UTF-16 code units (backslashes for slashes,
/// no trailing slash): MAX_PATH less the NUL and the reserve.
pub const PATH_MAX_UNITS: usize = MAX_PATH - 1 - EXTRACT_PREFIX_RESERVE;

/// The longest folder (a directory member, or a file's parent), in UTF-16
/// code units: `CreateDirectory` keeps 12 units of MAX_PATH for an 8.3
/// file name, so folders stop at 248 units with the NUL, less the reserve.
pub const DIR_MAX_UNITS: usize = MAX_PATH - 12 - 1 - EXTRACT_PREFIX_RESERVE;

/// Names of devices, which Windows opens instead of a file of that name,
/// with any extension and in any case. Microsoft's "Naming Files" lists
/// COM0 and LPT0 too.
const DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6",
    "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// Characters no Windows file name may have (besides control characters).
const FORBIDDEN: &[char] = &['<', '>', ':', '"', '\\', '|', '?', '*'];

/// `None` if Windows can hold `path` (a directory's ends with `/`);
/// otherwise why not, naming the offending component or folder.
pub fn refusal(path: &str) -> Option<String> {
    let is_dir = path.ends_with('/');
    let path = path.strip_suffix('/').unwrap_or(path);
    if path.is_empty() {
        return Some("the path is empty".to_string());
    }
    let components: Vec<&str> = path.split('/').collect();
    let mut units = 0;
    for (i, c) in components.iter().enumerate() {
        if let Some(why) = component_refusal(c) {
            return Some(why);
        }
        units += usize::from(i > 0) + c.encode_utf16().count();
        let is_folder = is_dir || i + 1 < components.len();
        if is_folder && units > DIR_MAX_UNITS {
            let folder = components[..=i].join("/");
            return Some(format!(
                "folder {folder:?} is {units} UTF-16 units long; Windows folders hold \
                 {DIR_MAX_UNITS}, keeping {EXTRACT_PREFIX_RESERVE} for the folder extracted into"
            ));
        }
    }
    if units > PATH_MAX_UNITS {
        return Some(format!(
            "the path is {units} UTF-16 units long; Windows holds {PATH_MAX_UNITS}, \
             keeping {EXTRACT_PREFIX_RESERVE} for the folder extracted into"
        ));
    }
    None
}

/// Why Windows cannot hold a file or folder named `c`, if it cannot.
fn component_refusal(c: &str) -> Option<String> {
    if c.is_empty() || c == "." || c == ".." {
        return Some(format!("component {c:?} is not a name"));
    }
    if let Some(ch) = c.chars().find(|&ch| ch < ' ' || FORBIDDEN.contains(&ch)) {
        let what = if ch < ' ' {
            format!("control character U+{:04X}", ch as u32)
        } else {
            format!("{ch:?}")
        };
        return Some(format!("{c:?} has {what}, which Windows forbids in names"));
    }
    // Windows ignores the extension, and spaces before it, when it looks
    // for device names.
    let stem = c.split('.').next().unwrap_or("").trim_end_matches(' ');
    if let Some(dev) = DEVICES.iter().find(|d| d.eq_ignore_ascii_case(stem)) {
        return Some(format!("{c:?} is the Windows device name {dev}"));
    }
    if c.ends_with('.') || c.ends_with(' ') {
        let end = if c.ends_with('.') { "a dot" } else { "a space" };
        return Some(format!(
            "{c:?} ends with {end}, which Windows drops from names"
        ));
    }
    None
}

/// Two member paths of one archive that Windows holds as one, being the
/// same but for case: a file, or a folder on both paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseClash {
    /// The earlier spelling: the earlier path, or its folder (ending `/`).
    pub earlier: String,
    /// The new path's spelling of the same file or folder.
    pub later: String,
    /// The member path that first spelled it `earlier`.
    pub earlier_path: String,
}

impl std::fmt::Display for CaseClash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} and {:?} (of {:?}) differ only in case; Windows would hold them as one",
            self.later, self.earlier, self.earlier_path
        )
    }
}

/// The paths of one archive, fed one by one, folded to one case to find
/// names Windows would merge. Two spellings of one folder (`Lib/x`,
/// `lib/y`) clash too: Windows would merge them silently into the first
/// one's spelling, which is not what the archive says.
///
/// Folding maps each character to its simple uppercase, as NTFS compares
/// names, then to lowercase: it finds every pair NTFS merges, and a few it
/// keeps apart (the Kelvin sign and `K`), refusing rather than missing.
#[derive(Debug, Default)]
pub struct CaseFold {
    /// Each file and folder path seen, folded and without a trailing `/`:
    /// its first spelling (a folder's ending `/`), and the member path that
    /// spelled it so.
    seen: HashMap<String, (String, String)>,
}

impl CaseFold {
    /// No paths yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one member path (a directory's may end with `/`); a clash with
    /// an earlier path if the two differ only in case, in the path itself or
    /// in one of its folders. The same path twice does not clash.
    pub fn add(&mut self, path: &str) -> Option<CaseClash> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        let components: Vec<&str> = trimmed.split('/').collect();
        let mut spelled = String::with_capacity(trimmed.len());
        let mut folded = String::with_capacity(trimmed.len());
        for (i, c) in components.iter().enumerate() {
            if i > 0 {
                spelled.push('/');
                folded.push('/');
            }
            spelled.push_str(c);
            folded.extend(c.chars().flat_map(fold));
            let folder = i + 1 < components.len() || path.ends_with('/');
            let shown = if folder {
                format!("{spelled}/")
            } else {
                spelled.clone()
            };
            match self.seen.get(&folded) {
                Some((first, first_path)) if first.trim_end_matches('/') != spelled => {
                    return Some(CaseClash {
                        earlier: first.clone(),
                        later: shown,
                        earlier_path: first_path.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    self.seen.insert(folded.clone(), (shown, path.to_string()));
                }
            }
        }
        None
    }
}

/// `c` in the case CaseFold compares.
fn fold(c: char) -> impl Iterator<Item = char> {
    let mut upper = c.to_uppercase();
    let simple = match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    };
    simple.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(path: &str, why: &str) {
        let got = refusal(path).unwrap_or_else(|| panic!("{path:?} should be refused"));
        assert!(got.contains(why), "{path:?}: {got:?} lacks {why:?}");
    }

    #[test]
    fn rocm_paths_are_fine() {
        for p in [
            "lib/librocblas.so.4",
            "bin/hipcc.bat",
            "bin/",
            "share/doc/rocm/LICENSE",
            "share/doc/naïve.txt",
            "lib/llvm/lib/clang/19/include/__clang_hip_runtime_wrapper.h",
            "lib/rocblas/library/TensileLibrary_lazy_gfx942.dat",
            // Names that merely start like devices.
            "include/hip/amd_detail/amd_hip_common.h",
            "share/console.txt",
            "lib/com10.txt",
            "bin/nul_test",
            // Dots and spaces inside names are fine.
            "share/my docs/v1.2.3/read me.txt",
            ".hidden/.config",
        ] {
            assert_eq!(refusal(p), None, "{p}");
        }
    }

    #[test]
    fn device_names_in_any_component() {
        refused("share/doc/CON", "device name CON");
        refused("share/doc/con.txt", "device name CON");
        refused("lib/Aux/librocblas.so.4", "device name AUX");
        refused("lib/nul.tar.gz", "device name NUL");
        refused("bin/prn .bat", "device name PRN");
        refused("bin/com1", "device name COM1");
        refused("bin/LPT9.log", "device name LPT9");
        refused("share/com².txt", "device name COM²");
        refused("share/lpt³", "device name LPT³");
        refused("share/Com0/", "device name COM0");
    }

    #[test]
    fn trailing_dots_and_spaces() {
        refused("share/doc/rocm/LICENSE.", "ends with a dot");
        refused("lib/llvm /lib", "ends with a space");
        refused("lib/../bin/hipcc", "not a name");
        refused("./lib/librocblas.so.4", "not a name");
        refused("lib//x", "not a name");
        refused("", "empty");
    }

    #[test]
    fn forbidden_characters() {
        for (p, ch) in [
            ("share/doc/a<b", "'<'"),
            ("share/doc/a>b", "'>'"),
            ("lib/c:/x", "':'"),
            ("share/\"q\"", "'\"'"),
            ("bin\\hipcc.bat", "'\\\\'"),
            ("share/a|b", "'|'"),
            ("share/why?", "'?'"),
            ("lib/*.so", "'*'"),
            ("share/tab\there", "U+0009"),
            ("share/nl\n", "U+000A"),
            ("share/nul\0", "U+0000"),
        ] {
            refused(p, ch);
        }
        // DEL and other characters above the controls are fine.
        assert_eq!(refusal("share/del\u{7f}"), None);
    }

    #[test]
    fn path_length_in_utf16_units() {
        let dir = "lib/llvm/lib/clang/19/include/";
        let longest = format!("{dir}{}", "x".repeat(PATH_MAX_UNITS - dir.len()));
        assert_eq!(longest.encode_utf16().count(), PATH_MAX_UNITS);
        assert_eq!(refusal(&longest), None);
        refused(&format!("{longest}x"), "200 UTF-16 units long");
        // 'é' is one unit (two bytes); '𝔵' two units (four bytes).
        let e = format!("{dir}{}", "é".repeat(PATH_MAX_UNITS - dir.len()));
        assert_eq!(refusal(&e), None);
        let wide = format!("{dir}{}", "𝔵".repeat((PATH_MAX_UNITS - dir.len()) / 2 + 1));
        refused(&wide, "UTF-16 units");
        // Folders stop earlier: as a directory, or as a file's parent.
        let folder = format!("{dir}{}", "d".repeat(DIR_MAX_UNITS - dir.len()));
        assert_eq!(refusal(&format!("{folder}/")), None);
        refused(&format!("{folder}d/"), "folder");
        refused(&format!("{folder}d/f"), "folder");
        assert_eq!(refusal(&format!("{folder}d")), None, "a file may be longer");
    }

    #[test]
    fn names_differing_in_case_clash() {
        let mut f = CaseFold::new();
        for p in [
            "bin/",
            "bin/hipcc.bat",
            "lib/librocblas.so.4",
            "share/doc/rocm/LICENSE",
            // The same path again is not a case clash.
            "lib/librocblas.so.4",
        ] {
            assert_eq!(f.add(p), None, "{p}");
        }
        let clash = f.add("share/doc/rocm/license").unwrap();
        assert_eq!(clash.earlier, "share/doc/rocm/LICENSE");
        assert_eq!(clash.later, "share/doc/rocm/license");
        assert_eq!(clash.earlier_path, "share/doc/rocm/LICENSE");
        assert!(clash.to_string().contains("differ only in case"), "{clash}");
    }

    #[test]
    fn folders_differing_in_case_clash() {
        let mut f = CaseFold::new();
        assert_eq!(f.add("Lib/x"), None);
        let clash = f.add("lib/y").unwrap();
        assert_eq!(
            (clash.earlier.as_str(), clash.later.as_str()),
            ("Lib/", "lib/")
        );
        assert_eq!(clash.earlier_path, "Lib/x");
        // A directory member and a file's folder.
        let mut f = CaseFold::new();
        assert_eq!(f.add("lib/llvm/"), None);
        let clash = f.add("lib/LLVM/lib/clang/19/include/stddef.h").unwrap();
        assert_eq!(
            (clash.earlier.as_str(), clash.later.as_str()),
            ("lib/llvm/", "lib/LLVM/")
        );
        // A file and a folder of the same name but case.
        let mut f = CaseFold::new();
        assert_eq!(f.add("share/doc"), None);
        assert!(f.add("share/DOC/rocm/LICENSE").is_some());
    }

    #[test]
    fn folding_beyond_ascii() {
        let mut f = CaseFold::new();
        assert_eq!(f.add("share/doc/Naïve.txt"), None);
        assert!(f.add("share/doc/NAÏVE.txt").is_some());
        // NTFS upcases the dotless i and the long s to I and S.
        let mut f = CaseFold::new();
        assert_eq!(f.add("share/ı"), None);
        assert!(f.add("share/i").is_some());
        assert_eq!(f.add("share/ſ"), None);
        assert!(f.add("share/S").is_some());
        // No simple uppercase: ß stays itself.
        let mut f = CaseFold::new();
        assert_eq!(f.add("share/straße"), None);
        assert_eq!(f.add("share/strasse"), None);
    }
}
