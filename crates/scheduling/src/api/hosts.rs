//! Hosts (the envoys who present shows): creation, whose country the
//! catalog must know, and updates with field masks and etags.

use caravan_platform::{
    error::{FieldViolations, etag_mismatch, invalid_argument},
    resource::{self, ID_RULE},
};
use caravan_proto::{scheduling::v1 as pb, timestamp_from_micros};
use tonic::Status;

use super::{SchedulingApi, resources::UPDATE_ATTEMPTS};
use crate::{
    domain::{CountryName, Host, HostFields, check_text},
    error::Error,
};

const HOST: &str = "caravan.scheduling.v1.Host";

impl SchedulingApi {
    /// CreateHost itself, run at most once per request id.
    pub(super) async fn create_host_once(&self, request: pb::CreateHostRequest) -> Result<pb::Host, Status> {
        let pb::CreateHostRequest { host, host_id, request_id: _ } = request;
        let mut violations = FieldViolations::new();
        if !host_id.is_empty() && !resource::valid_id(&host_id) {
            violations.add("host_id", ID_RULE);
        }
        let fields = match host {
            None => {
                violations.add("host", "is required");
                None
            }
            Some(host) => host_fields(host, &mut violations),
        };
        violations.into_result()?;
        let Some(fields) = fields else {
            return Err(Status::invalid_argument("host is invalid"));
        };
        if !self.upstream.country_exists(&fields.country).await? {
            return Err(Error::InvalidReference {
                field: "host.country",
                message: format!("{} is not a country the catalog knows", fields.country),
            }
            .into());
        }
        let id = if host_id.is_empty() { resource::new_id('h') } else { host_id };
        let host = self.store.insert_host(&id, &fields, self.clock.now()).await?;
        Ok(host_to_pb(host))
    }

    pub(super) async fn update_host_once(&self, request: pb::UpdateHostRequest) -> Result<pb::Host, Status> {
        let pb::UpdateHostRequest { host, update_mask, request_id: _ } = request;
        let host = host.ok_or_else(|| invalid_argument("host", "is required"))?;
        let id = resource::parse_name(&host.name, "hosts").map_err(|e| invalid_argument("host.name", e))?.to_owned();
        let paths = resource::mask_paths(
            update_mask.map(|m| m.paths),
            &["display_name", "title", "country", "embassy"],
            &["name", "etag", "create_time", "update_time"],
            "Host",
        )?;
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.store.host(&id).await?;
            if !host.etag.is_empty() && host.etag != current.etag() {
                return Err(etag_mismatch(HOST, &format!("hosts/{id}")));
            }
            let (version, country_before) = (current.version, current.fields.country.clone());
            let mut merged = host_to_pb(current);
            for path in &paths {
                match path.as_str() {
                    "display_name" => merged.display_name.clone_from(&host.display_name),
                    "title" => merged.title.clone_from(&host.title),
                    "country" => merged.country.clone_from(&host.country),
                    _ => merged.embassy.clone_from(&host.embassy),
                }
            }
            let mut violations = FieldViolations::new();
            let fields = host_fields(merged, &mut violations);
            violations.into_result()?;
            let fields = fields.ok_or_else(|| invalid_argument("host", "is invalid"))?;
            if fields.country != country_before && !self.upstream.country_exists(&fields.country).await? {
                return Err(Error::InvalidReference {
                    field: "host.country",
                    message: format!("{} is not a country the catalog knows", fields.country),
                }
                .into());
            }
            if let Some(updated) = self.store.update_host(&id, version, &fields, self.clock.now()).await? {
                return Ok(host_to_pb(updated));
            }
            if !host.etag.is_empty() {
                return Err(etag_mismatch(HOST, &format!("hosts/{id}")));
            }
        }
        Err(Status::aborted("the host kept changing; read it again and retry"))
    }
}

/// Validates a host from a request; output-only fields are ignored.
fn host_fields(host: pb::Host, violations: &mut FieldViolations) -> Option<HostFields> {
    let pb::Host { name: _, display_name, title, country, embassy, etag: _, create_time: _, update_time: _ } = host;
    let mut ok = true;
    for (field, value, required) in
        [("host.display_name", &display_name, true), ("host.title", &title, false), ("host.embassy", &embassy, false)]
    {
        if let Err(e) = check_text(value, required) {
            violations.add(field, e);
            ok = false;
        }
    }
    let country = CountryName::parse(&country).map_err(|e| violations.add("host.country", e)).ok();
    match (ok, country) {
        (true, Some(country)) => Some(HostFields { display_name, title, country, embassy }),
        _ => None,
    }
}

pub(super) fn host_to_pb(host: Host) -> pb::Host {
    let etag = host.etag();
    let Host { id, fields: HostFields { display_name, title, country, embassy }, version: _, create_time, update_time } =
        host;
    pb::Host {
        name: format!("hosts/{id}"),
        display_name,
        title,
        country: country.to_string(),
        embassy,
        etag,
        create_time: Some(timestamp_from_micros(create_time.0)),
        update_time: Some(timestamp_from_micros(update_time.0)),
    }
}
