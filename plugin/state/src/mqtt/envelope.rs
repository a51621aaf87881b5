//! AIO's RPC envelope around the state store's RESP3 payloads: the MQTT 5 user properties a
//! request carries (`__ft` fencing token, `__protVer`) and those of responses (`__stat`,
//! `__stMsg`, `__ts`, `__protVer`, `__srcId`) and of key notifications.

use weir_door::message::Properties;
use weir_model::hlc::Hlc;

/// The fencing token of a request.
pub const FENCING_TOKEN: &str = "__ft";
/// The HLC timestamp: of the request, of the value's version in a response.
pub const TIMESTAMP: &str = "__ts";
/// The response's status, as an HTTP status code.
pub const STATUS: &str = "__stat";
/// Why a request failed.
pub const STATUS_MESSAGE: &str = "__stMsg";
/// The header a 400 is about, and its value.
pub const INVALID_PROPERTY_NAME: &str = "__propName";
/// See [`INVALID_PROPERTY_NAME`].
pub const INVALID_PROPERTY_VALUE: &str = "__propVal";
/// The RPC protocol version, `major.minor`.
pub const PROTOCOL_VERSION: &str = "__protVer";
/// The major protocol versions a 505 says are supported.
pub const SUPPORTED_MAJOR_VERSIONS: &str = "__supProtMajVer";
/// Who sent the message.
pub const SOURCE_ID: &str = "__srcId";

/// The RPC protocol version Weir speaks.
const VERSION: &str = "1.0";
/// RESP3 payloads.
const CONTENT_TYPE: &str = "application/octet-stream";

/// How a request is answered at the RPC level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// 200: the RESP3 reply is the payload (a RESP3 `-ERR` is still a 200).
    Ok,
    /// 400: a header is invalid.
    BadHeader {
        /// The header.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// 500: the store failed.
    Internal(String),
    /// 505: a protocol major version other than 1.
    VersionNotSupported(String),
}

/// A user property of `properties`.
pub fn property<'a>(properties: &'a Properties, name: &str) -> Option<&'a str> {
    properties
        .user_properties
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Whether the request's protocol version (absent: 1.0) has major version 1.
pub fn supported_version(properties: &Properties) -> Result<(), Status> {
    match property(properties, PROTOCOL_VERSION) {
        None => Ok(()),
        Some(version) if version.split('.').next() == Some("1") => Ok(()),
        Some(version) => Err(Status::VersionNotSupported(version.to_string())),
    }
}

/// The properties of the response to a request with `correlation_data`.
pub fn response(
    status: &Status,
    correlation_data: Option<bytes::Bytes>,
    version: &Hlc,
    source_id: &str,
) -> Properties {
    let mut user_properties = vec![
        (STATUS.to_string(), status_code(status).to_string()),
        (TIMESTAMP.to_string(), version.to_string()),
        (PROTOCOL_VERSION.to_string(), VERSION.to_string()),
        (SOURCE_ID.to_string(), source_id.to_string()),
    ];
    match status {
        Status::Ok => {}
        Status::BadHeader { name, value } => {
            user_properties.push((STATUS_MESSAGE.into(), format!("invalid header {name}")));
            user_properties.push((INVALID_PROPERTY_NAME.into(), (*name).to_string()));
            user_properties.push((INVALID_PROPERTY_VALUE.into(), value.clone()));
        }
        Status::Internal(message) => {
            user_properties.push((STATUS_MESSAGE.into(), message.clone()));
        }
        Status::VersionNotSupported(version) => {
            user_properties.push((
                STATUS_MESSAGE.into(),
                format!("protocol version {version} is not supported"),
            ));
            user_properties.push((SUPPORTED_MAJOR_VERSIONS.into(), "1".into()));
        }
    }
    Properties {
        correlation_data,
        user_properties,
        content_type: Some(CONTENT_TYPE.to_string()),
        ..Properties::default()
    }
}

/// The properties of a key notification about a change at `version`.
pub fn notification(version: &Hlc, source_id: &str) -> Properties {
    Properties {
        user_properties: vec![
            (TIMESTAMP.to_string(), version.to_string()),
            (PROTOCOL_VERSION.to_string(), VERSION.to_string()),
            (SOURCE_ID.to_string(), source_id.to_string()),
        ],
        content_type: Some(CONTENT_TYPE.to_string()),
        ..Properties::default()
    }
}

fn status_code(status: &Status) -> u16 {
    match status {
        Status::Ok => 200,
        Status::BadHeader { .. } => 400,
        Status::Internal(_) => 500,
        Status::VersionNotSupported(_) => 505,
    }
}
