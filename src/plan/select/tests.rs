//! Selection against TheRock's own cases: families, targets, tests,
//! shared owners, packaging exclusions and the messages of each.

use super::*;
use crate::plan::ArtifactName;

fn art(file: &str) -> SourceArtifact {
    SourceArtifact {
        name: ArtifactName::parse(file).unwrap().unwrap(),
        key: file.into(),
        size: 10,
        sha256_key: None,
    }
}

fn opts(families: &[&str]) -> PlanOptions {
    PlanOptions {
        families: families.iter().map(|s| s.to_string()).collect(),
        targets: vec![],
        per_target: false,
        platform: "linux".into(),
        version: "7.0".into(),
        tests: true,
        multiarch: MultiarchMode::Auto,
        formats: vec![Format::Gzip],
        exclude_artifacts: vec!["fftw3".into()],
        exclude_components: vec!["test".into()],
    }
}

fn names(plan: &Plan, t: usize) -> Vec<String> {
    plan.tarballs[t]
        .artifacts
        .iter()
        .map(|&i| plan.artifacts[i].name.stem())
        .collect()
}

/// Every tarball a smaller one of its format shares an artifact with
/// is an origin (staged, and copied from); the last in upload order is
/// not.
#[test]
fn copy_origins_are_the_tarballs_smaller_ones_share_with() {
    let listed = [
        "base_lib_generic.tar.zst",
        "fftw3_lib_generic.tar.zst",
        "core_test_generic.tar.zst",
        "blas_lib_gfx942.tar.zst",
        "blas_lib_gfx1100.tar.zst",
        "blas_test_gfx1101.tar.zst",
    ]
    .map(art)
    .to_vec();
    let table = FamilyTable::builtin();
    let families = ["gfx94X-dcgpu", "gfx110X-all"];
    let plan = build_plan(listed.clone(), &opts(&families), &table, Some(true)).unwrap();
    // By size: multiarch-tests, gfx110X-all-tests, gfx94X-dcgpu-tests,
    // multiarch, then the two base tarballs (equal: plan order).
    assert_eq!(
        plan.copy_origins(),
        [true, true, false, true, true, true],
        "{:?}",
        plan.upload_order()
    );
    // Two formats: nothing copies across them.
    let mut two = opts(&families);
    two.formats = vec![Format::Gzip, Format::Zstd];
    let plan = build_plan(listed, &two, &table, Some(true)).unwrap();
    let origins = plan.copy_origins();
    for f in [Format::Gzip, Format::Zstd] {
        let of: Vec<bool> = (0..plan.tarballs.len())
            .filter(|&t| plan.tarballs[t].format == f)
            .map(|t| origins[t])
            .collect();
        assert_eq!(of.iter().filter(|o| !**o).count(), 1, "{f:?}: {of:?}");
    }
}

/// TheRock's shared owners (its `test_shared_owner_preserves_selected_
/// targets`): `gfx1250` and `gfx1250-strict` go into one `gfx1250`
/// tarball holding the payloads of the ones selected, whichever order.
#[test]
fn shared_owners_make_one_tarball_of_the_selected_targets() {
    let listed = [
        "base_lib_generic.tar.zst",
        "blas_lib_gfx1250.tar.zst",
        "blas_lib_gfx1250-strict.tar.zst",
        "blas_test_gfx1250-strict.tar.zst",
        "blas_lib_gfx1151.tar.zst",
    ]
    .map(art)
    .to_vec();
    let table = FamilyTable::builtin();
    for (selected, want) in [
        (&["gfx1250"][..], &["blas_lib_gfx1250"][..]),
        (&["gfx1250-strict"], &["blas_lib_gfx1250-strict"]),
        (
            &["gfx1250", "gfx1250-strict"],
            &["blas_lib_gfx1250", "blas_lib_gfx1250-strict"],
        ),
        // Artifacts in the order the families name them.
        (
            &["gfx1250-strict", "gfx1250"],
            &["blas_lib_gfx1250-strict", "blas_lib_gfx1250"],
        ),
    ] {
        let mut families = selected.to_vec();
        families.push("gfx1151");
        let plan = build_plan(listed.clone(), &opts(&families), &table, Some(true)).unwrap();
        let files: Vec<&str> = plan.tarballs.iter().map(|t| t.file_name.as_str()).collect();
        assert_eq!(
            files,
            [
                "therock-dist-linux-gfx1250-7.0.tar.gz",
                "therock-dist-linux-gfx1250-tests-7.0.tar.gz",
                "therock-dist-linux-gfx1151-7.0.tar.gz",
                "therock-dist-linux-gfx1151-tests-7.0.tar.gz",
                "therock-dist-linux-multiarch-7.0.tar.gz",
                "therock-dist-linux-multiarch-tests-7.0.tar.gz",
            ],
            "{selected:?}"
        );
        let mut got = names(&plan, 0);
        got.retain(|n| n != "base_lib_generic");
        assert_eq!(got, want, "{selected:?}");
        let tests = names(&plan, 1);
        assert_eq!(
            tests.contains(&"blas_test_gfx1250-strict".to_string()),
            selected.contains(&"gfx1250-strict"),
            "{selected:?}: {tests:?}"
        );
    }
}

#[test]
fn kpack_plan_orders_and_selects() {
    let listed = [
        "base_lib_generic.tar.zst",
        "base_lib_generic.tar.xz",
        "fftw3_lib_generic.tar.zst",
        "core_test_generic.tar.zst",
        "blas_lib_gfx942.tar.zst",
        "blas_lib_gfx1100.tar.zst",
        "blas_test_gfx1101.tar.zst",
        "blas_lib_gfx1201.tar.zst",
    ]
    .map(art)
    .to_vec();
    let table = FamilyTable::builtin();
    let plan = build_plan(
        listed,
        &opts(&["gfx94X-dcgpu", "gfx110X-all"]),
        &table,
        Some(true),
    )
    .unwrap();
    let labels: Vec<_> = plan.tarballs.iter().map(|t| t.file_name.clone()).collect();
    assert_eq!(
        labels,
        [
            "therock-dist-linux-gfx94X-dcgpu-7.0.tar.gz",
            "therock-dist-linux-gfx94X-dcgpu-tests-7.0.tar.gz",
            "therock-dist-linux-gfx110X-all-7.0.tar.gz",
            "therock-dist-linux-gfx110X-all-tests-7.0.tar.gz",
            "therock-dist-linux-multiarch-7.0.tar.gz",
            "therock-dist-linux-multiarch-tests-7.0.tar.gz",
        ]
    );
    assert_eq!(names(&plan, 0), ["base_lib_generic", "blas_lib_gfx942"]);
    // What the base tarballs leave out (fftw3, tests) comes after what
    // every tarball keeps: multiarch is the start of multiarch-tests.
    assert_eq!(
        names(&plan, 5),
        [
            "base_lib_generic",
            "blas_lib_gfx942",
            "blas_lib_gfx1100",
            "core_test_generic",
            "fftw3_lib_generic",
            "blas_test_gfx1101"
        ]
    );
    assert_eq!(names(&plan, 5)[..3], names(&plan, 4)[..]);
    assert_eq!(
        plan.artifacts[0].name.compression,
        crate::plan::Compression::Zst
    );
    assert!(!plan.artifacts.iter().any(|a| a.name.target == "gfx1201"));
}

fn labels(plan: &Plan) -> Vec<String> {
    plan.tarballs.iter().map(|t| t.key()).collect()
}

#[test]
fn errors_name_what_is_available() {
    let table = FamilyTable::builtin();
    let e = build_plan(vec![], &opts(&["gfx94X-dcgpu"]), &table, None).unwrap_err();
    assert!(e.to_string().contains("no artifacts"), "{e}");
    // No generic artifacts and none of the family's: a tarball of nothing.
    let listed = ["blas_lib_gfx942.tar.zst"].map(art).to_vec();
    let e = build_plan(listed, &opts(&["gfx110X-all"]), &table, Some(false)).unwrap_err();
    let e = e.to_string();
    for needle in [
        "\"gfx110X-all\" selects nothing",
        "targets in this run: gfx942",
        "known families",
    ] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

/// A family without device code in the run gets the generic artifacts,
/// as TheRock builds it, and a warning saying so.
#[test]
fn family_without_device_code_is_generic_only() {
    let listed = ["base_lib_generic.tar.zst", "blas_lib_gfx942.tar.zst"]
        .map(art)
        .to_vec();
    let table = FamilyTable::builtin();
    let plan = build_plan(listed, &opts(&["gfx110X-all"]), &table, Some(false)).unwrap();
    assert_eq!(labels(&plan), ["gfx110X-all", "gfx110X-all-tests"]);
    assert_eq!(names(&plan, 0), ["base_lib_generic"]);
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    let w = &plan.warnings[0];
    for needle in [
        "family \"gfx110X-all\" (targets gfx1100, gfx1101, gfx1102, gfx1103)",
        "matches no device-specific artifact",
        "generic artifacts only",
        "targets in this run: gfx942",
    ] {
        assert!(w.contains(needle), "{needle}: {w}");
    }
}

/// A name the table lacks matches artifacts of exactly that target
/// (feature suffixes included, by base arch), as TheRock's fetch does.
#[test]
fn unknown_family_matches_its_own_name() {
    let listed = [
        "base_lib_generic.tar.zst",
        "blas_lib_gfx1099.tar.zst",
        "blas_lib_gfx1099:xnack+.tar.zst",
        "blas_lib_gfx942.tar.zst",
    ]
    .map(art)
    .to_vec();
    let table = FamilyTable::builtin();
    let plan = build_plan(listed.clone(), &opts(&["gfx1099"]), &table, Some(true)).unwrap();
    assert_eq!(
        names(&plan, 0),
        [
            "base_lib_generic",
            "blas_lib_gfx1099",
            "blas_lib_gfx1099:xnack+"
        ]
    );
    let w = plan.warnings.join("\n");
    for needle in [
        "family \"gfx1099\" is not in the built-in family table (TheRock 89553ce3746e)",
        "selects only artifacts whose target is \"gfx1099\"",
        "--family-table",
    ] {
        assert!(w.contains(needle), "{needle}: {w}");
    }
    // The stale-table net names it too: no family of the table has it.
    assert!(
        w.contains("artifacts for gfx1099, gfx1099:xnack+ that"),
        "{w}"
    );

    // Unknown and absent: generic only, and the loudest warning.
    let plan = build_plan(listed, &opts(&["gfx999X"]), &table, Some(true)).unwrap();
    assert_eq!(names(&plan, 0), ["base_lib_generic"]);
    let w = &plan.warnings[0];
    for needle in [
        "family \"gfx999X\" is not in the built-in family table",
        "no artifact of this run has target \"gfx999X\"",
        "generic artifacts only",
        "check the name",
        "--family-table",
        "targets in this run: gfx1099, gfx1099:xnack+, gfx942",
        "known families: dcgpu-all",
    ] {
        assert!(w.contains(needle), "{needle}: {w}");
    }
}

/// Per-target artifacts no table entry knows: a warning names them and
/// --family-table (an old table's gfx103X-all lacked gfx1031).
#[test]
fn stale_table_warns_about_unknown_targets() {
    let old = FamilyTable::parse_cmake(
        "therock_add_amdgpu_target(gfx1030 \"RX 6800\" FAMILY gfx103X-all)\n\
         therock_add_amdgpu_target(gfx1032 \"RX 6600\" FAMILY gfx103X-all)\n",
    )
    .unwrap()
    .with_origin("the family table old.cmake");
    let listed = [
        "base_lib_generic.tar.zst",
        "blas_lib_gfx1030.tar.zst",
        "blas_lib_gfx1031.tar.zst",
        "blas_lib_gfx1032:xnack-.tar.zst",
        "blas_lib_gfx1034.tar.zst",
    ]
    .map(art)
    .to_vec();
    let plan = build_plan(listed.clone(), &opts(&["gfx103X-all"]), &old, Some(true)).unwrap();
    assert!(!names(&plan, 0).contains(&"blas_lib_gfx1031".to_string()));
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    let w = &plan.warnings[0];
    for needle in [
        "artifacts for gfx1031, gfx1034 that the family table old.cmake does not know",
        "--family-table",
    ] {
        assert!(w.contains(needle), "{needle}: {w}");
    }
    // The current table knows them all: no warning, all in the tarball.
    let plan = build_plan(
        listed,
        &opts(&["gfx103X-all"]),
        &FamilyTable::builtin(),
        Some(true),
    )
    .unwrap();
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert_eq!(names(&plan, 0).len(), 5);
}

/// Targets TheRock's matrix keeps out of packaging go in no tarball,
/// multiarch and per-target ones included; a run holding them is not a
/// stale table; asking for them says why they are missing.
#[test]
fn targets_excluded_from_packaging_go_in_no_tarball() {
    let listed = [
        "base_lib_generic.tar.zst",
        "blas_lib_gfx942.tar.zst",
        "blas_lib_amdgcnspirv.tar.zst",
        "blas_test_amdgcnspirv.tar.zst",
    ]
    .map(art)
    .to_vec();
    let table = FamilyTable::builtin();
    let mut o = opts(&["gfx94X-dcgpu"]);
    o.per_target = true;
    o.targets = vec!["gfx942".into()];
    let plan = build_plan(listed.clone(), &o, &table, Some(true)).unwrap();
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    assert!(!plan.tarballs.is_empty());
    assert!(plan
        .artifacts
        .iter()
        .all(|a| !a.name.target.contains("spirv")));
    assert!(plan.tarballs.iter().all(|t| !t.label.contains("spirv")));

    let mut o = opts(&["amdgcnspirv"]);
    o.multiarch = MultiarchMode::Never;
    let plan = build_plan(listed, &o, &table, Some(true)).unwrap();
    assert_eq!(names(&plan, 0), ["base_lib_generic"]);
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    let w = &plan.warnings[0];
    for needle in [
        "2 artifact(s) of target amdgcnspirv go in no tarball",
        "exclude-from-packaging (selected by amdgcnspirv)",
    ] {
        assert!(w.contains(needle), "{needle}: {w}");
    }
}

/// `--multiarch auto` builds it for every kpack-split run, one family
/// included, and for no other.
#[test]
fn multiarch_auto_follows_kpack_split() {
    let listed = ["base_lib_generic.tar.zst", "blas_lib_gfx942.tar.zst"]
        .map(art)
        .to_vec();
    let table = FamilyTable::builtin();
    let mut o = opts(&["gfx94X-dcgpu"]);
    o.tests = false;
    let plan = build_plan(listed.clone(), &o, &table, Some(true)).unwrap();
    assert_eq!(labels(&plan), ["gfx94X-dcgpu", "multiarch"]);
    assert_eq!(names(&plan, 1), names(&plan, 0));
    for kpack in [Some(false), None] {
        let plan = build_plan(listed.clone(), &o, &table, kpack).unwrap();
        assert_eq!(labels(&plan), ["gfx94X-dcgpu"], "{kpack:?}");
    }
    o.multiarch = MultiarchMode::Never;
    let plan = build_plan(listed, &o, &table, Some(true)).unwrap();
    assert_eq!(labels(&plan), ["gfx94X-dcgpu"]);
}
