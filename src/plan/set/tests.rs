use super::*;
use crate::plan::FamilyTable;

fn parse(text: &str) -> crate::error::Result<TarballSet> {
    TarballSet::parse(text, "set.toml", &FamilyTable::builtin())
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const FULL: &str = r#"
[groups]
radeon = ["gfx110X-all", "gfx120X-all", "gfx1151"]
all = ["radeon", "gfx94X-dcgpu"]

[[tarball]]
name = "rocm-sdk-{label}-{version}-{platform}"
each = ["gfx110X-all", "gfx94X-dcgpu"]
generic = true
components = ["lib", "run"]
exclude-components = ["test", "dbg"]
artifacts = ["blas"]
exclude-artifacts = ["fftw3"]
exclude-paths = ["share/doc/**", "bin/*-test-*"]
formats = ["gz", "zst"]
sidecar = "sha256sum"

[[tarball]]
name = "rocm-sdk-hpc-{label}-{version}-{platform}"
union = ["radeon", "gfx94X-dcgpu"]
label = "radeon"
generic = false
variant = "hpc"
sidecar = "sha256"

[[tarball]]
name = "rocm-sdk-{label}-{version}"
each-target = ["dcgpu-all"]
sidecar = "none"
"#;

#[test]
fn reads_the_documented_interface() {
    let set = parse(FULL).unwrap();
    assert_eq!(set.groups.len(), 2);
    assert_eq!(set.groups[0].name, "radeon");
    assert!(!set.lenient);
    let t = &set.tarballs[0];
    assert_eq!(
        t.origin,
        Origin::Line {
            file: "set.toml".into(),
            line: 6
        }
    );
    assert!(matches!(&t.cover, Cover::Each(e) if e.len() == 2));
    assert_eq!(t.formats, Some(vec![Format::Gzip, Format::Zstd]));
    assert!(t.keeps("blas", "lib") && !t.keeps("blas", "dbg") && !t.keeps("fft", "lib"));
    assert_eq!(
        t.render_name("gfx94X-dcgpu", "7.13.0", "linux"),
        "rocm-sdk-gfx94X-dcgpu-7.13.0-linux"
    );
    let u = &set.tarballs[1];
    assert!(matches!(&u.cover, Cover::Union { label, .. } if label == "radeon"));
    assert!(!u.generic);
    assert_eq!(u.variant.as_deref(), Some("hpc"));
    assert_eq!(
        u.sidecar.file_name("x.tar.gz").as_deref(),
        Some("x.tar.gz.sha256")
    );
    assert!(matches!(&set.tarballs[2].cover, Cover::EachTarget(_)));
    assert_eq!(set.tarballs[2].sidecar.file_name("x"), None);
}

#[test]
fn prints_what_it_reads() {
    let set = parse(FULL).unwrap();
    let text = set.to_toml("a comment\nover two lines");
    assert!(
        text.starts_with("# a comment\n# over two lines\n"),
        "{text}"
    );
    let again = parse(&text).unwrap();
    assert_eq!(again.to_toml("a comment\nover two lines"), text);
    assert_eq!(again.tarballs.len(), 3);
}

#[test]
fn templates_escape_braces() {
    assert_eq!(
        render("a{{b}}-{label}", |f| if f == "label" { "L" } else { "?" }),
        "a{b}-L"
    );
    for (t, needle) in [
        (
            "x-{arch}",
            "unknown field {arch}; the fields are {label}, {version}, {platform}",
        ),
        ("x-{label", "'{' without its '}'"),
        ("x}-y", "a lone '}'"),
        ("dir/x", "a file name"),
        ("", "empty"),
    ] {
        let e = check_template(t).unwrap_err();
        assert!(e.contains(needle), "{t:?}: {e}");
    }
}

/// Every error names the file and the line it is about.
#[test]
fn errors_name_file_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx94X-dcgpu\"]\ncolour = \"red\"\n",
            "set.toml:4: unknown field `colour`",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx94X-dcgpu\",\n  \"gfx999X-all\"]\n",
            "set.toml:4: \"gfx999X-all\" is not a group of this file (it has none) nor a family or target of the built-in family table",
        ),
        (
            "[groups]\nr = [\"gfx110X-all\", \"nosuch\"]\n[[tarball]]\nname = \"x-{label}\"\neach = [\"r\"]\n",
            "set.toml:2: \"nosuch\" is not a group of this file (r)",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\nunion = [\"radeon\"]\nlabel = \"r\"\n",
            "set.toml:3: \"radeon\" is not a group of this file",
        ),
        (
            "[groups]\na = [\"b\"]\nb = [\"gfx942\", \"a\"]\n[[tarball]]\nname = \"x-{label}\"\neach = [\"a\"]\n",
            "set.toml:3: group \"a\" includes itself (a → b → a)",
        ),
        (
            "[groups]\nme = [\"me\"]\n[[tarball]]\nname = \"x-{label}\"\neach = [\"me\"]\n",
            "set.toml:2: group \"me\" includes itself (me → me)",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\nunion = [\"gfx942\"]\nlabel = \"..\"\n",
            "set.toml:4: label: not a part of a tarball name: \"..\" is not a name",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\nunion = [\"gfx942\"]\nlabel = \"a\\nb\"\n",
            "set.toml:4: label: not a part of a tarball name: \"a\\nb\" holds the control character '\\n'",
        ),
        (
            "[groups]\n\"up/../x\" = [\"gfx942\"]\n[[tarball]]\nname = \"x-{label}\"\neach = [\"up/../x\"]\n",
            "set.toml:2: group name: not a part of a tarball name: \"up/../x\" holds a path separator",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx942\"]\nunion = [\"gfx942\"]\nlabel = \"u\"\n",
            "set.toml:1: each, union and each-target exclude each other",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\n",
            "set.toml:1: a [[tarball]] needs each = [...], union = [...] or each-target = [...]",
        ),
        (
            "[[tarball]]\nname = \"x\"\nunion = [\"gfx942\"]\n",
            "set.toml:3: a union needs a label",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx942\"]\nlabel = \"l\"\n",
            "set.toml:4: label is for a union",
        ),
        (
            "[[tarball]]\neach = [\"gfx942\"]\n",
            "set.toml:1: missing field `name`",
        ),
        (
            "\n[[tarball]]\nname = \"x-{arch}\"\neach = [\"gfx942\"]\n",
            "set.toml:3: name \"x-{arch}\": unknown field {arch}",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx942\"]\ncomponents = [\"lib\", \"docs\"]\n",
            "set.toml:4: components: unknown component \"docs\"; components are lib, run, dbg, dev, doc, test",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx942\"]\nformats = [\"gz\", \"bz2\"]\n",
            "set.toml:4: unknown format \"bz2\"; formats are gz, zst, zip",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx942\"]\nsidecar = \"md5\"\n",
            "set.toml:4: unknown sidecar \"md5\"; sidecars are sha256sum, sha256, none",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx942\"]\nexclude-paths = [\n  \"ok/**\",\n  \"{a,b}\"]\n",
            "set.toml:6: exclude-paths pattern \"{a,b}\": braces are not gitignore syntax",
        ),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = []\n",
            "set.toml:3: each is empty",
        ),
        (
            "[groups]\ngfx942 = [\"gfx950\"]\n[[tarball]]\nname = \"x-{label}\"\neach = [\"gfx942\"]\n",
            "set.toml:2: group \"gfx942\" has the name of a family or target",
        ),
        ("[groups]\n", "set.toml: no [[tarball]] table"),
        (
            "[[tarball]]\nname = \"x-{label}\"\neach = \"gfx942\"\n",
            "set.toml:3: invalid type: string \"gfx942\", expected a sequence",
        ),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "want {want:?}\n got {e}");
    }
}

#[test]
fn table_multi_family_names_and_suffixed_targets_are_entries() {
    let set = parse(
        "[[tarball]]\nname = \"x-{label}\"\neach = [\"dgpu-all\", \"dcgpu-all\", \"igpu-all\", \"gfx942:xnack+\"]\n",
    )
    .unwrap();
    assert_eq!(set.tarballs[0].cover.entries().len(), 4);
}
