//! Package owners: the name whose tarball a family or target goes into.
//! TheRock names each dist tarball after the owner of what it holds, and
//! a few targets are variants that share another's tarball (its SDK's
//! ownership metadata, `package_metadata.py`, schema 1: `gfx1250-strict`
//! goes into `gfx1250`'s). Everything else owns its own.

/// Targets that share another's tarball, as TheRock's ownership metadata
/// lists them.
const SHARED_OWNERS: &[(&str, &str)] = &[("gfx1250-strict", "gfx1250")];

/// The xnack / sramecc feature suffixes a target may carry (`:xnack+`,
/// `-sramecc-`, several in a row): dropped before looking up an owner.
fn canonical(name: &str) -> &str {
    let mut name = name;
    loop {
        let Some(rest) = ["xnack+", "xnack-", "sramecc+", "sramecc-"]
            .iter()
            .find_map(|f| name.strip_suffix(f))
            .and_then(|r| r.strip_suffix([':', '-']))
        else {
            return name;
        };
        name = rest;
    }
}

/// The name of the tarball `name` (a family or target) goes into.
pub fn owner(name: &str) -> &str {
    let name = canonical(name);
    SHARED_OWNERS
        .iter()
        .find(|(variant, _)| *variant == name)
        .map_or(name, |(_, owner)| owner)
}

/// `names` by owner, owners in order of first appearance, each with its
/// names in the order given (a name given twice kept once).
pub fn group<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for name in names {
        let o = owner(name);
        match groups.iter_mut().find(|(g, _)| *g == o) {
            Some((_, members)) if !members.contains(&name) => members.push(name),
            Some(_) => {}
            None => groups.push((o, vec![name])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_as_therock_names_them() {
        for name in [
            "gfx942",
            "gfx1250",
            "gfx1250-unknown",
            "gfx94X-dcgpu",
            "gfx1250:unknown+",
        ] {
            assert_eq!(owner(name), name);
        }
        for feature in ["", ":xnack+", "-xnack-", ":sramecc+:xnack-"] {
            assert_eq!(owner(&format!("gfx1250-strict{feature}")), "gfx1250");
        }
        assert_eq!(owner("gfx942:xnack+"), "gfx942");
    }

    #[test]
    fn groups_keep_their_members_and_order() {
        assert_eq!(
            group([
                "gfx1250-strict",
                "gfx1250",
                "gfx1250-strict",
                "gfx950:xnack+",
                "gfx1151"
            ]),
            [
                ("gfx1250", vec!["gfx1250-strict", "gfx1250"]),
                ("gfx950", vec!["gfx950:xnack+"]),
                ("gfx1151", vec!["gfx1151"]),
            ]
        );
    }
}
