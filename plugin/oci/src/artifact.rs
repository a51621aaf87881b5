//! What an artifact holds: which layer of a manifest is the module or the graph definition, and
//! the manifest Weir pushes.
//!
//! Accepted on pull, as users push them:
//! - `oras push REF temperature.wasm:application/wasm` (or without a media type: oras then says
//!   `application/vnd.oci.image.layer.v1.tar` and names the file in the layer's title);
//! - the wasm artifact convention (`application/vnd.wasm.content.layer.v1+wasm`, or a manifest
//!   whose `artifactType` or config media type says wasm);
//! - `weir module push` / `weir graph push`: an ordinary image manifest with one layer, which
//!   registries without OCI 1.1 artifact support (the distribution registry 2.8) store.

#[cfg(feature = "client")]
use oci_client::client::{Config, ImageLayer};
#[cfg(feature = "client")]
use oci_client::manifest::{OciDescriptor, OciImageManifest};
#[cfg(feature = "client")]
use std::collections::BTreeMap;

/// The layer media type of a module Weir pushes.
pub const WASM_MEDIA_TYPE: &str = "application/wasm";
/// The layer media type of a graph definition Weir pushes.
pub const YAML_MEDIA_TYPE: &str = "application/yaml";
/// The config media type of a module Weir pushes (the wasm artifact convention).
#[cfg(feature = "client")]
pub const WASM_CONFIG_MEDIA_TYPE: &str = oci_client::manifest::WASM_CONFIG_MEDIA_TYPE;
/// The config media type of a graph definition Weir pushes.
#[cfg(feature = "client")]
pub const GRAPH_CONFIG_MEDIA_TYPE: &str = "application/vnd.weir.graph.config.v1+json";
#[cfg(feature = "client")]
const TITLE: &str = "org.opencontainers.image.title";

/// What an artifact is expected to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    /// An operator module: one WebAssembly component.
    Module,
    /// A graph definition: one YAML file.
    Graph,
}

impl ArtifactKind {
    /// `module` or `graph definition`, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            ArtifactKind::Module => "module",
            ArtifactKind::Graph => "graph definition",
        }
    }

    /// The file extension of what it holds.
    pub fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Module => "wasm",
            ArtifactKind::Graph => "yaml",
        }
    }

    #[cfg(feature = "client")]
    /// Whether `descriptor`, a layer of `manifest`, looks like this kind's content.
    fn matches(self, manifest: &OciImageManifest, descriptor: &OciDescriptor) -> bool {
        let title = descriptor
            .annotations
            .as_ref()
            .and_then(|a| a.get(TITLE))
            .map(String::as_str)
            .unwrap_or("");
        let media = descriptor.media_type.as_str();
        match self {
            ArtifactKind::Module => {
                let typed_artifact = manifest
                    .artifact_type
                    .as_deref()
                    .is_some_and(|t| t.contains("wasm"))
                    || manifest.config.media_type.contains("wasm");
                media.contains("wasm")
                    || title.ends_with(".wasm")
                    || (typed_artifact && manifest.layers.len() == 1)
            }
            ArtifactKind::Graph => {
                media.contains("yaml") || title.ends_with(".yaml") || title.ends_with(".yml")
            }
        }
    }

    #[cfg(feature = "client")]
    /// The one layer of `manifest` holding this kind's content, or what the layers are.
    pub fn select_layer(self, manifest: &OciImageManifest) -> Result<OciDescriptor, String> {
        let matching: Vec<&OciDescriptor> = manifest
            .layers
            .iter()
            .filter(|layer| self.matches(manifest, layer))
            .collect();
        match matching.as_slice() {
            [layer] => Ok((*layer).clone()),
            [] => Err(format!(
                "not a {} layer: the artifact's layers are {}",
                match self {
                    ArtifactKind::Module => "wasm",
                    ArtifactKind::Graph => "YAML",
                },
                describe_layers(manifest)
            )),
            _ => Err(format!(
                "{} layers could each be the {}: {}",
                matching.len(),
                self.noun(),
                describe_layers(manifest)
            )),
        }
    }

    /// Checks that `bytes`, the selected layer, is what this kind holds.
    pub fn check_content(self, bytes: &[u8]) -> Result<(), String> {
        match self {
            ArtifactKind::Module if !bytes.starts_with(b"\0asm") => {
                Err("not a wasm layer: its content is not WebAssembly (no `\\0asm` header)".into())
            }
            ArtifactKind::Graph if std::str::from_utf8(bytes).is_err() => {
                Err("not a YAML layer: its content is not UTF-8 text".into())
            }
            _ => Ok(()),
        }
    }

    #[cfg(feature = "client")]
    /// The layer, config and manifest Weir pushes for `bytes`, named `title` in the layer's
    /// annotations.
    pub fn image(self, bytes: Vec<u8>, title: &str) -> (ImageLayer, Config, OciImageManifest) {
        let (media_type, config_type) = match self {
            ArtifactKind::Module => (WASM_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE),
            ArtifactKind::Graph => (YAML_MEDIA_TYPE, GRAPH_CONFIG_MEDIA_TYPE),
        };
        let annotations = BTreeMap::from([(TITLE.to_string(), title.to_string())]);
        let layer = ImageLayer::new(bytes, media_type.to_string(), Some(annotations));
        let config = Config::new(b"{}".to_vec(), config_type.to_string(), None);
        let manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        (layer, config, manifest)
    }
}

#[cfg(feature = "client")]
fn describe_layers(manifest: &OciImageManifest) -> String {
    if manifest.layers.is_empty() {
        return "none".into();
    }
    let layers: Vec<String> = manifest
        .layers
        .iter()
        .map(
            |layer| match layer.annotations.as_ref().and_then(|a| a.get(TITLE)) {
                Some(title) => format!("`{}` ({title})", layer.media_type),
                None => format!("`{}`", layer.media_type),
            },
        )
        .collect();
    layers.join(", ")
}

#[cfg(all(test, feature = "client"))]
mod tests {
    use super::*;

    fn manifest(layers: &[(&str, Option<&str>)], config: &str) -> OciImageManifest {
        let mut manifest = OciImageManifest::default();
        manifest.config.media_type = config.into();
        manifest.layers = layers
            .iter()
            .map(|(media, title)| OciDescriptor {
                media_type: media.to_string(),
                annotations: title.map(|t| BTreeMap::from([(TITLE.to_string(), t.to_string())])),
                ..OciDescriptor::default()
            })
            .collect();
        manifest
    }

    #[test]
    fn finds_the_module_as_oras_and_weir_push_it() {
        let oras_untyped = manifest(
            &[(
                "application/vnd.oci.image.layer.v1.tar",
                Some("temperature.wasm"),
            )],
            "application/vnd.unknown.config.v1+json",
        );
        let oras_typed = manifest(
            &[("application/wasm", None)],
            "application/vnd.oci.empty.v1+json",
        );
        let convention = manifest(
            &[("application/octet-stream", None)],
            WASM_CONFIG_MEDIA_TYPE,
        );
        let (_, _, weir) = ArtifactKind::Module.image(b"\0asm".to_vec(), "t.wasm");
        for artifact in [oras_untyped, oras_typed, convention, weir] {
            assert!(
                ArtifactKind::Module.select_layer(&artifact).is_ok(),
                "{artifact:?}"
            );
        }
    }

    #[test]
    fn refuses_what_holds_no_single_module() {
        let image = manifest(
            &[("application/vnd.oci.image.layer.v1.tar+gzip", None)],
            "application/vnd.oci.image.config.v1+json",
        );
        let error = ArtifactKind::Module.select_layer(&image).unwrap_err();
        assert!(error.starts_with("not a wasm layer"), "{error}");
        let two = manifest(
            &[("application/wasm", None), ("application/wasm", None)],
            "x",
        );
        assert!(ArtifactKind::Module.select_layer(&two).is_err());
        assert!(ArtifactKind::Module.check_content(b"PK\x03\x04").is_err());
    }

    #[test]
    fn finds_the_graph_definition() {
        let oras = manifest(
            &[(
                "application/vnd.oci.image.layer.v1.tar",
                Some("graph-simple.yaml"),
            )],
            "application/vnd.unknown.config.v1+json",
        );
        assert!(ArtifactKind::Graph.select_layer(&oras).is_ok());
        let module = manifest(&[("application/wasm", Some("m.wasm"))], "x");
        let error = ArtifactKind::Graph.select_layer(&module).unwrap_err();
        assert!(
            error.contains("not a YAML layer") && error.contains("m.wasm"),
            "{error}"
        );
    }
}
