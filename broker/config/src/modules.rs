//! The `modules` section of `weir.yaml`: where module references resolve (local directories,
//! OCI registries and the cache of what was pulled from them) and where the schema registry's
//! files are.
//!
//! ```yaml
//! modules:
//!   directories: [target/modules]
//!   cache_dir: /var/cache/weir/oci          # default: $XDG_CACHE_HOME/weir/oci
//!   registries:
//!     localhost:5000: {insecure: true}
//!     registry.factory.lan: {ca_file: factory-ca.pem}
//!     myregistry.azurecr.io:
//!       username: ${REGISTRY_USER}
//!       password: ${REGISTRY_PASSWORD}
//! ```

use super::paths::{ExistingFile, RelativePath};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use weir_graph::ModuleSources;
use weir_oci::{Credentials, Registries, RegistrySettings};

/// Where module references resolve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModulesConfig {
    /// Directories searched in order (relative ones against the configuration's directory; for
    /// the embedded default, the current directory).
    #[serde(default = "default_module_dirs")]
    pub directories: Vec<RelativePath>,
    /// The directory that answers modules' `schema-registry.get(id, version)`
    /// (`<id>/<version>.json`, or `<id>.json` for every version); absent: "not available".
    #[serde(default)]
    pub schema_dir: Option<RelativePath>,
    /// Where pulled modules and graph definitions are kept, by digest. Absent:
    /// `$XDG_CACHE_HOME/weir/oci`.
    #[serde(default)]
    pub cache_dir: Option<RelativePath>,
    /// How to talk to each registry, by `host[:port]` as references write it.
    #[serde(default, deserialize_with = "registries")]
    pub registries: BTreeMap<String, RegistryConfig>,
}

impl Default for ModulesConfig {
    fn default() -> Self {
        ModulesConfig {
            directories: default_module_dirs(),
            schema_dir: None,
            cache_dir: None,
            registries: BTreeMap::new(),
        }
    }
}

impl ModulesConfig {
    /// The directories as paths.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.directories
            .iter()
            .map(|d| d.path().to_path_buf())
            .collect()
    }

    /// The registries as configured, with the cache.
    pub fn registries(&self) -> Registries {
        let cache = match &self.cache_dir {
            Some(dir) => dir.path().to_path_buf(),
            None => Registries::default_cache_dir(),
        };
        let mut registries = Registries::new(cache);
        for (host, config) in &self.registries {
            registries.configure(host, config.settings.clone());
        }
        registries
    }

    /// Where module references resolve: the directories, then the registries.
    pub fn sources(&self) -> ModuleSources {
        ModuleSources {
            directories: self.paths(),
            registries: self.registries(),
        }
    }
}

fn default_module_dirs() -> Vec<RelativePath> {
    vec![RelativePath::resolve("target/modules".as_ref())]
}

/// One entry of `modules.registries`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRegistry")]
pub struct RegistryConfig {
    /// As the OCI client takes them.
    pub settings: RegistrySettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    ca_file: Option<ExistingFile>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

impl TryFrom<RawRegistry> for RegistryConfig {
    type Error = String;

    fn try_from(raw: RawRegistry) -> Result<Self, String> {
        let credentials = match (raw.username, raw.password, raw.token) {
            (None, None, None) => Credentials::Anonymous,
            (Some(username), Some(password), None) => Credentials::Basic { username, password },
            (None, None, Some(token)) => Credentials::Token(token),
            (_, _, Some(_)) => {
                return Err("give a registry `token` or `username` and `password`, not both".into())
            }
            _ => return Err("a registry's `username` and `password` go together".into()),
        };
        Ok(RegistryConfig {
            settings: RegistrySettings {
                insecure: raw.insecure,
                ca_file: raw.ca_file.map(|file| file.path().to_path_buf()),
                credentials,
            },
        })
    }
}

/// The registries, each keyed by a `host[:port]` that references can name.
fn registries<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, RegistryConfig>, D::Error> {
    let registries = BTreeMap::<RegistryHost, RegistryConfig>::deserialize(d)?;
    Ok(registries
        .into_iter()
        .map(|(host, config)| (host.0, config))
        .collect())
}

/// A key of `modules.registries`, checked where it is written.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct RegistryHost(String);

impl<'de> Deserialize<'de> for RegistryHost {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let host = String::deserialize(d)?;
        let probe = format!("{host}/probe");
        if host.contains('/') || !weir_oci::names_registry(&probe) {
            return Err(serde::de::Error::custom(format_args!(
                "`{host}` is not a registry as references name one: `host[:port]` with a `.` or a `:`, or `localhost`"
            )));
        }
        Ok(RegistryHost(host))
    }
}

#[cfg(test)]
mod tests {
    use crate::WeirConfig;

    fn parse(yaml: &str) -> Result<WeirConfig, String> {
        WeirConfig::from_str_with(yaml, "weir.yaml", ".".as_ref(), |name| {
            (name == "TOKEN").then(|| "s3cret".to_string())
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn registries_take_plain_http_and_credentials() {
        let config = parse(
            "modules:\n  directories: []\n  cache_dir: /tmp/oci\n  registries:\n    localhost:5000: {insecure: true}\n    example.azurecr.io: {token: '${TOKEN}'}\n",
        )
        .unwrap();
        assert!(config.modules.paths().is_empty());
        let debug = format!("{:?}", config.modules.registries());
        assert!(
            debug.contains("localhost:5000") && debug.contains("insecure: true"),
            "{debug}"
        );
        assert!(
            !debug.contains("s3cret"),
            "secrets stay out of debug output: {debug}"
        );
    }

    #[test]
    fn registry_errors_are_located() {
        let error =
            parse("modules:\n  registries:\n    myregistry: {insecure: true}\n").unwrap_err();
        assert!(
            error.starts_with("weir.yaml:3:") && error.contains("`myregistry` is not a registry"),
            "{error}"
        );
        let error =
            parse("modules:\n  registries:\n    localhost:5000: {username: u}\n").unwrap_err();
        assert!(error.contains("go together"), "{error}");
    }

    #[test]
    fn a_registry_definition_must_name_a_registry() {
        let graph = |definition: &str| {
            format!("graphs:\n  - name: g\n    definition: {definition}\n    source: [a]\n    sink: {{topic: b}}\n")
        };
        #[cfg(feature = "oci")]
        assert!(parse(&graph("oci://localhost:5000/graphs/g:1.0.0")).is_ok());
        let error = parse(&graph("oci://graphs/g:1.0.0")).unwrap_err();
        assert!(
            error.starts_with("weir.yaml:3:17: graphs[0].definition: `graphs/g:1.0.0` is not a registry reference"),
            "{error}"
        );
    }
}
