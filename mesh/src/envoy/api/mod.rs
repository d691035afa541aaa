//! The part of Envoy's v3 API the bootstraps use, as serde types: each field is spelled as
//! Envoy spells it in JSON, so that a misspelt key is a compile error rather than a proxy
//! that refuses to start.
//!
//! Only what `bookinfo up --mesh` writes is here. A `google.protobuf.Any` is written in one
//! place ([`Extension`], [`PerFilterConfig`]) from the type's [`ExtensionConfig`], so a
//! configuration cannot carry another message's `@type`.

mod bootstrap;
mod cluster;
mod listener;
mod route;
mod tracing;

use std::net::SocketAddr;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

pub use self::bootstrap::*;
pub use self::cluster::*;
pub use self::listener::*;
pub use self::route::*;
pub use self::tracing::*;

/// The configuration of an extension, a message Envoy takes inside a `google.protobuf.Any`.
pub trait ExtensionConfig: Serialize {
    /// The extension's name, as Istio names it.
    const NAME: &'static str;
    /// The message's full protobuf name, such as `envoy.config.trace.v3.ZipkinConfig`: its
    /// `typed_config`'s `@type` is `type.googleapis.com/` and that name.
    const TYPE: &'static str;
}

/// An extension and its configuration, `{"name": ..., "typed_config": {"@type": ..., ...}}`:
/// Envoy's `TypedExtensionConfig` and the messages shaped like it (an HTTP or network filter,
/// a tracing provider, a retry host predicate, a resource monitor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<T>(pub T);

impl<T: ExtensionConfig> Serialize for Extension<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut extension = serializer.serialize_struct("Extension", 2)?;
        extension.serialize_field("name", T::NAME)?;
        extension.serialize_field("typed_config", &Any::of(&self.0))?;
        extension.end()
    }
}

/// The per-route configuration of one HTTP filter, `{"<filter>": {"@type": ..., ...}}` (a
/// route's `typed_per_filter_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerFilterConfig<T>(pub T);

impl<T: ExtensionConfig> Serialize for PerFilterConfig<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(T::NAME, &Any::of(&self.0))?;
        map.end()
    }
}

/// A message as `google.protobuf.Any` is written in JSON: its `@type`, then its own fields.
#[derive(Serialize)]
#[serde(bound = "T: Serialize")]
struct Any<'a, T> {
    #[serde(rename = "@type", serialize_with = "type_url")]
    type_name: &'static str,
    #[serde(flatten)]
    message: &'a T,
}

impl<'a, T: ExtensionConfig> Any<'a, T> {
    fn of(message: &'a T) -> Self {
        Any { type_name: T::TYPE, message }
    }
}

fn type_url<S: Serializer>(type_name: &&'static str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("type.googleapis.com/{type_name}"))
}

/// `config.core.v3.Address`: here always a socket address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The IP address and port.
    pub socket_address: SocketAddress,
}

/// `config.core.v3.SocketAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocketAddress {
    /// The IP address, as text.
    pub address: String,
    /// The port.
    pub port_value: u16,
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address { socket_address: SocketAddress { address: addr.ip().to_string(), port_value: addr.port() } }
    }
}

/// How protobuf's JSON mapping writes the well-known types Envoy takes.
pub(crate) mod proto {
    use std::time::Duration;

    use serde::Serializer;

    /// A `google.protobuf.Duration`: `7s`, `0.500000000s`.
    pub fn duration<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&seconds(*duration))
    }

    /// An optional `google.protobuf.Duration` (left out when none).
    pub fn optional_duration<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => self::duration(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// An `int64`, which protobuf's JSON mapping writes as a string.
    pub fn int64<S: Serializer>(value: &i64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// Whether a `bool` is protobuf's default (false), which need not be written.
    pub fn is_false(value: &bool) -> bool {
        !value
    }

    /// Whether an `int64` is protobuf's default (zero), which need not be written.
    pub fn is_zero(value: &i64) -> bool {
        *value == 0
    }

    fn seconds(duration: Duration) -> String {
        let nanos = duration.subsec_nanos();
        if nanos == 0 {
            format!("{}s", duration.as_secs())
        } else {
            format!("{}.{nanos:09}s", duration.as_secs())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn an_extension_is_written_with_its_name_and_its_type() {
        let router = serde_json::to_string(&Extension(Router)).unwrap();
        assert_eq!(
            router,
            r#"{"name":"envoy.filters.http.router","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}"#
        );
        let delay = FaultDelay {
            fixed_delay: Duration::from_millis(1500),
            percentage: FractionalPercent { numerator: 500_000, denominator: DenominatorType::Million },
        };
        let fault = PerFilterConfig(HttpFault { delay: Some(delay), abort: None });
        assert_eq!(
            serde_json::to_value(&fault).unwrap(),
            json!({"envoy.filters.http.fault": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
                "delay": {"fixed_delay": "1.500000000s", "percentage": {"numerator": 500_000, "denominator": "MILLION"}},
            }})
        );
    }

    #[test]
    fn well_known_types_are_written_as_protobuf_writes_them() {
        let policy = RetryPolicy {
            retry_on: "5xx".to_owned(),
            num_retries: 1,
            retry_host_predicate: Vec::new(),
            host_selection_retry_max_attempts: 5,
            retriable_status_codes: Vec::new(),
            per_try_timeout: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            serde_json::to_value(&policy).unwrap(),
            json!({"retry_on": "5xx", "num_retries": 1, "host_selection_retry_max_attempts": "5", "per_try_timeout": "2s"})
        );
    }
}
