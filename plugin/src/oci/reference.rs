//! Which references name a registry, by Docker's rule, and parsing them.

use super::OciError;
use oci_client::Reference;

/// Whether `reference` names a registry: its first path component contains a `.` or a `:`, or
/// is `localhost` (Docker's rule). Other references (`window:1.0.0`,
/// `azure-samples/explore-iot-operations/window:1.0.0`) resolve in local module directories.
///
/// ```
/// use weir_plugin::oci::names_registry;
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

/// `reference` parsed; it must name a registry. Without a tag or digest it means `:latest`.
pub fn parse(reference: &str) -> Result<Reference, OciError> {
    let invalid = |reason: String| OciError::Reference {
        reference: reference.to_string(),
        reason,
    };
    if !names_registry(reference) {
        return Err(invalid(
            "it names no registry (its first component needs a `.` or a `:`, or to be `localhost`)"
                .into(),
        ));
    }
    reference.parse().map_err(|e| invalid(format!("{e}")))
}

/// `reference` without a leading `oci://`, which graph definitions in weir.yaml carry.
pub fn strip_scheme(reference: &str) -> &str {
    reference.strip_prefix("oci://").unwrap_or(reference)
}

#[cfg(test)]
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
