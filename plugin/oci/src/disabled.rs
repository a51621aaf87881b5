//! Registries in a binary built without the `oci` feature: every pull and push is refused
//! with the feature to build in (configurations naming a registry are refused before this).

use super::{ArtifactKind, OciError, Pulled, Registries};

impl Registries {
    /// Refused: this binary has no registry client.
    pub fn pull(&self, reference: &str, _kind: ArtifactKind) -> Result<Pulled, OciError> {
        Err(OciError::Disabled {
            reference: reference.to_string(),
        })
    }

    /// Refused: this binary has no registry client.
    pub fn push(
        &self,
        _bytes: Vec<u8>,
        _title: &str,
        reference: &str,
        _kind: ArtifactKind,
    ) -> Result<String, OciError> {
        Err(OciError::Disabled {
            reference: reference.to_string(),
        })
    }
}
