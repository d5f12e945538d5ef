//! Whether and how spans leave the process: the few standard variables the
//! OpenTelemetry SDK does not read for caravan, declared like every other
//! setting. The SDK reads the rest itself (see [`super::export`]).

use std::path::PathBuf;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// `grpc` (the default: the collector's port 4317).
    Grpc,
    /// `http/protobuf` (port 4318; `/v1/traces` is added to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, not to the traces-only variable).
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// The standard variables the SDK does not read for caravan, declared once
/// like every other setting; each `…_TRACES_…` variable wins over its
/// general one. The SDK reads the rest (headers, timeout, compression,
/// sampler, resource, batches) itself.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Traces (OpenTelemetry)")]
pub struct OtelSettings {
    /// OTLP collector for traces; no export when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL", value_parser = endpoint, global = true)]
    pub otlp_endpoint: Option<String>,
    /// The collector for traces only (wins over OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_name = "URL", value_parser = endpoint, global = true)]
    pub otlp_traces_endpoint: Option<String>,
    /// OTLP transport [default: grpc].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_enum, global = true)]
    pub otlp_protocol: Option<Protocol>,
    /// OTLP transport for traces only.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", value_enum, global = true)]
    pub otlp_traces_protocol: Option<Protocol>,
    /// PEM CA of an https:// collector [default: the public roots].
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CERTIFICATE", value_name = "FILE", global = true)]
    pub otlp_certificate: Option<PathBuf>,
    /// The same, for traces only.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", value_name = "FILE", global = true)]
    pub otlp_traces_certificate: Option<PathBuf>,
    /// PEM client certificate for a collector that requires mTLS.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", value_name = "FILE", global = true)]
    pub otlp_client_certificate: Option<PathBuf>,
    /// The same, for traces only.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", value_name = "FILE", global = true)]
    pub otlp_traces_client_certificate: Option<PathBuf>,
    /// PEM private key of that client certificate.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CLIENT_KEY", value_name = "FILE", global = true)]
    pub otlp_client_key: Option<PathBuf>,
    /// The same, for traces only.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", value_name = "FILE", global = true)]
    pub otlp_traces_client_key: Option<PathBuf>,
    /// true: export no traces, whatever else is set.
    #[arg(long, env = "OTEL_SDK_DISABLED", value_name = "BOOL", default_value = "false", value_parser = boolean,
          action = clap::ArgAction::Set, global = true)]
    pub otel_sdk_disabled: bool,
    /// otlp, or none to export no traces.
    #[arg(long, env = "OTEL_TRACES_EXPORTER", default_value = "otlp", value_parser = ["otlp", "none"], global = true)]
    pub otel_traces_exporter: String,
}

impl OtelSettings {
    /// What export needs, the pairs checked together.
    pub fn into_config(self) -> Result<OtelConfig, ConfigError> {
        let client_identity = match (
            self.otlp_traces_client_certificate.or(self.otlp_client_certificate),
            self.otlp_traces_client_key.or(self.otlp_client_key),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(ConfigError::new(
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                    "a client certificate and its key go together: set both OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY, or neither",
                ));
            }
        };
        let exported = !self.otel_sdk_disabled && self.otel_traces_exporter == "otlp";
        Ok(OtelConfig {
            endpoint: self.otlp_traces_endpoint.or(self.otlp_endpoint).filter(|_| exported),
            protocol: self.otlp_traces_protocol.or(self.otlp_protocol).unwrap_or(Protocol::Grpc),
            certificate: self.otlp_traces_certificate.or(self.otlp_certificate),
            client_identity,
        })
    }
}

fn endpoint(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be http:// or https://".to_owned());
    }
    Ok(raw.to_owned())
}

fn boolean(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("not true or false".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Declared;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn from_vars(vars: &HashMap<String, String>) -> Result<OtelConfig, ConfigError> {
        OtelSettings::from_vars(vars)?.into_config()
    }

    #[test]
    fn export_is_on_only_with_a_collector_and_not_turned_off() {
        assert_eq!(from_vars(&env(&[])).unwrap().endpoint, None);
        let collector = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        assert_eq!(from_vars(&env(&[collector])).unwrap().endpoint.as_deref(), Some(collector.1));
        for off in [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")] {
            assert_eq!(from_vars(&env(&[collector, off])).unwrap().endpoint, None, "{off:?}");
        }
        let both = env(&[collector, ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example:4317")]);
        assert_eq!(
            from_vars(&both).unwrap().endpoint.as_deref(),
            Some("https://traces.example:4317"),
            "the traces variable wins"
        );
    }

    #[test]
    fn the_protocol_picks_the_transport() {
        assert_eq!(from_vars(&env(&[])).unwrap().protocol, Protocol::Grpc);
        let http = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert_eq!(from_vars(&http).unwrap().protocol, Protocol::HttpProtobuf);
        let traces =
            env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")]);
        assert_eq!(from_vars(&traces).unwrap().protocol, Protocol::Grpc);
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
            assert_eq!(from_vars(&env(&[(var, value)])).unwrap_err().variable, var, "{var}={value}");
        }
        let half_pair = env(&[("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/otel/client.pem")]);
        assert_eq!(from_vars(&half_pair).unwrap_err().variable, "OTEL_EXPORTER_OTLP_CLIENT_KEY");
    }
}
