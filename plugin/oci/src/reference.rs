//! Which references name a registry, by Docker's rule, and parsing them.

use super::OciError;
#[cfg(feature = "client")]
use oci_client::Reference;

/// Whether `reference` names a registry: its first path component contains a `.` or a `:`, or
/// is `localhost` (Docker's rule). Other references (`window:1.0.0`,
/// `azure-samples/explore-iot-operations/window:1.0.0`) resolve in local module directories.
///
/// ```
/// use weir_oci::names_registry;
/// assert!(names_registry("localhost:5000/samples/temperature:1.0.0"));
/// assert!(names_registry("localhost/temperature:1.0.0"));
/// assert!(names_registry("myregistry.azurecr.io/graph-simple:1.0.0"));
/// assert!(!names_registry("temperature:1.0.0"));
/// assert!(!names_registry("azure-samples/explore-iot-operations/window:1.0.0"));
/// ```
pub fn names_registry(reference: &str) -> bool {
    match reference.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// Checks that `reference` is a registry reference this binary can pull: it names a registry
/// and parses, and the binary has the `oci` feature.
pub fn check(reference: &str) -> Result<(), OciError> {
    #[cfg(feature = "client")]
    return parse(reference).map(drop);
    #[cfg(not(feature = "client"))]
    match names_registry(reference) {
        false => Err(names_no_registry(reference)),
        true => Err(OciError::Disabled {
            reference: reference.to_string(),
        }),
    }
}

/// The error for a reference that names no registry.
fn names_no_registry(reference: &str) -> OciError {
    OciError::Reference {
        reference: reference.to_string(),
        reason:
            "it names no registry (its first component needs a `.` or a `:`, or to be `localhost`)"
                .into(),
    }
}

/// The last component of `reference`'s repository, without tag or digest: `temperature` for
/// `localhost:5000/samples/temperature:1.0.0`.
///
/// ```
/// use weir_oci::repository_name;
/// assert_eq!(repository_name("localhost:5000/samples/temperature:1.0.0"), "temperature");
/// assert_eq!(repository_name("oci://example.com/window@sha256:00"), "window");
/// assert_eq!(repository_name("localhost/graph"), "graph");
/// ```
pub fn repository_name(reference: &str) -> &str {
    let path = strip_scheme(reference);
    let path = path.split_once('@').map_or(path, |(path, _)| path);
    let last = path.rsplit('/').next().unwrap_or(path);
    last.split_once(':').map_or(last, |(name, _)| name)
}

/// `reference` parsed; it must name a registry. Without a tag or digest it means `:latest`.
#[cfg(feature = "client")]
pub fn parse(reference: &str) -> Result<Reference, OciError> {
    if !names_registry(reference) {
        return Err(names_no_registry(reference));
    }
    reference
        .parse()
        .map_err(|e: oci_client::ParseError| OciError::Reference {
            reference: reference.to_string(),
            reason: e.to_string(),
        })
}

/// `reference` without a leading `oci://`, which graph definitions in weir.yaml carry.
pub fn strip_scheme(reference: &str) -> &str {
    reference.strip_prefix("oci://").unwrap_or(reference)
}

#[cfg(all(test, feature = "client"))]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_and_digests() {
        let tagged = parse("localhost:5000/samples/temperature:1.0.0").unwrap();
        assert_eq!(tagged.registry(), "localhost:5000");
        assert_eq!(tagged.repository(), "samples/temperature");
        assert_eq!(tagged.tag(), Some("1.0.0"));
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = parse(&format!("127.0.0.1:5000/window@{digest}")).unwrap();
        assert_eq!(pinned.digest(), Some(digest.as_str()));
    }

    #[test]
    fn refuses_local_and_malformed_references() {
        assert!(parse("temperature:1.0.0").is_err());
        let error = parse("localhost:5000/Upper/Case:1")
            .unwrap_err()
            .to_string();
        assert!(error.contains("localhost:5000/Upper/Case:1"), "{error}");
    }
}
