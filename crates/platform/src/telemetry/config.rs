//! Whether and how spans leave the process: the few standard variables the
//! OpenTelemetry SDK does not read for caravan. The SDK reads the rest
//! itself (see [`super::export`]).

use std::{collections::HashMap, path::PathBuf};

use crate::config::ConfigError;

/// The export settings caravan reads.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// The collector (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`); no export when unset, when
    /// `OTEL_SDK_DISABLED=true` or when `OTEL_TRACES_EXPORTER=none`.
    pub endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub protocol: Protocol,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`: the CA (PEM) that signs an
    /// `https://` collector's certificate; the public roots when unset.
    pub certificate: Option<PathBuf>,
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `…_CLIENT_KEY` (PEM), for
    /// a collector that asks for mutual TLS; both or neither.
    pub client_identity: Option<(PathBuf, PathBuf)>,
}

/// OTLP's transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc` (the default: the collector's port 4317).
    Grpc,
    /// `http/protobuf` (port 4318; `/v1/traces` is added to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, not to the traces-only variable).
    HttpProtobuf,
}

impl OtelConfig {
    /// Reads `OTEL_SDK_DISABLED`, `OTEL_TRACES_EXPORTER` and, each also as
    /// `OTEL_EXPORTER_OTLP_TRACES_…` (which wins), `OTEL_EXPORTER_OTLP_{ENDPOINT,
    /// PROTOCOL,CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}`.
    pub fn from_env(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        // The traces-only variable, else the general one; with the name read.
        let exporter = |suffix: &str| -> Option<(String, &str)> {
            [format!("OTEL_EXPORTER_OTLP_TRACES_{suffix}"), format!("OTEL_EXPORTER_OTLP_{suffix}")]
                .into_iter()
                .find_map(|name| get(&name).map(|value| (name, value)))
        };
        let disabled = match get("OTEL_SDK_DISABLED").map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::new("OTEL_SDK_DISABLED", format!("`{other}` is not true or false")));
            }
        };
        let exported = match get("OTEL_TRACES_EXPORTER") {
            None | Some("otlp") => true,
            Some("none") => false,
            Some(other) => {
                return Err(ConfigError::new(
                    "OTEL_TRACES_EXPORTER",
                    format!("`{other}` is not otlp or none (caravan exports over OTLP only)"),
                ));
            }
        };
        let endpoint = match exporter("ENDPOINT") {
            None => None,
            Some((name, raw)) => {
                let url =
                    url::Url::parse(raw).map_err(|e| ConfigError::new(&name, format!("`{raw}` is not a URL: {e}")))?;
                if !matches!(url.scheme(), "http" | "https") {
                    return Err(ConfigError::new(&name, "must be http:// or https://"));
                }
                Some(raw.to_owned())
            }
        };
        let protocol = match exporter("PROTOCOL") {
            None | Some((_, "grpc")) => Protocol::Grpc,
            Some((_, "http/protobuf")) => Protocol::HttpProtobuf,
            Some((name, other)) => {
                return Err(ConfigError::new(&name, format!("`{other}` is not grpc or http/protobuf")));
            }
        };
        let path = |suffix: &str| exporter(suffix).map(|(_, raw)| PathBuf::from(raw));
        let client_identity = match (path("CLIENT_CERTIFICATE"), path("CLIENT_KEY")) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                    "a client certificate and its key go together: set both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY, or neither",
                ));
            }
        };
        Ok(OtelConfig {
            endpoint: endpoint.filter(|_| exported && !disabled),
            protocol,
            certificate: path("CERTIFICATE"),
            client_identity,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn export_is_on_only_with_a_collector_and_not_turned_off() {
        assert_eq!(OtelConfig::from_env(&env(&[])).unwrap().endpoint, None);
        let collector = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        assert_eq!(OtelConfig::from_env(&env(&[collector])).unwrap().endpoint.as_deref(), Some(collector.1));
        for off in [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")] {
            assert_eq!(OtelConfig::from_env(&env(&[collector, off])).unwrap().endpoint, None, "{off:?}");
        }
        let both = env(&[collector, ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example:4317")]);
        assert_eq!(
            OtelConfig::from_env(&both).unwrap().endpoint.as_deref(),
            Some("https://traces.example:4317"),
            "the traces variable wins"
        );
    }

    #[test]
    fn the_protocol_picks_the_transport() {
        assert_eq!(OtelConfig::from_env(&env(&[])).unwrap().protocol, Protocol::Grpc);
        let http = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert_eq!(OtelConfig::from_env(&http).unwrap().protocol, Protocol::HttpProtobuf);
        let traces =
            env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")]);
        assert_eq!(OtelConfig::from_env(&traces).unwrap().protocol, Protocol::Grpc);
    }

    #[test]
    fn what_cannot_work_is_refused_naming_the_variable() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SDK_DISABLED", "maybe"),
            ("OTEL_TRACES_EXPORTER", "jaeger"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector"),
        ] {
            assert_eq!(OtelConfig::from_env(&env(&[(var, value)])).unwrap_err().variable, var, "{var}={value}");
        }
        let half_pair = env(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/otel/client.pem")]);
        assert_eq!(OtelConfig::from_env(&half_pair).unwrap_err().variable, "OTEL_EXPORTER_OTLP_CLIENT_KEY");
    }
}
