//! The in-memory AWS: regional custom domain names, as AWS documents CreateDomainName: a name
//! is made once (ConflictException; moto overwrites it), its certificate must be an ACM ARN of
//! the region (BadRequestException), mutual TLS needs the TLS_1_2 policy, and deleting it
//! deletes its base path mappings.

use crosslink_plan::kinds::DomainNameOp;
use crosslink_plan::op::PatchOp;

use super::*;

fn bad(m: impl Into<String>) -> CloudError {
    err(ErrorKind::Permanent, "BadRequestException", m)
}

pub(super) fn apply(w: &mut World, me: &str, op: &DomainNameOp) -> Result<Outcome, CloudError> {
    use DomainNameOp::*;
    match op {
        CreateDomainName { name, certificate_arn, security_policy, truststore, tags } => {
            let region = w.acct(me).region.clone();
            if !certificate_arn.starts_with(&format!("arn:aws:acm:{region}:")) {
                return Err(bad(format!("Invalid certificate ARN {certificate_arn}: it must be an ACM certificate in {region}")));
            }
            if truststore.is_some() && security_policy != "TLS_1_2" {
                return Err(bad("Mutual TLS requires the TLS_1_2 security policy"));
            }
            if w.acct(me).domain_names.iter().any(|d| &d.name == name) {
                return Err(err(ErrorKind::Conflict, "ConflictException", format!("The domain name {name} already exists")));
            }
            let id = w.short_id();
            w.acct(me).domain_names.push(DomainName {
                name: name.clone(),
                regional_domain_name: Some(format!("d-{id}.execute-api.{region}.amazonaws.com")),
                regional_hosted_zone_id: Some("Z1U9ULNL0V5AJ3".into()),
                certificate_arn: Some(certificate_arn.clone()),
                security_policy: Some(security_policy.clone()),
                truststore_uri: truststore.as_ref().map(|t| t.uri.clone()),
                truststore_version: truststore.as_ref().and_then(|t| t.version.clone()),
                tags: tags.clone(),
                mappings: Vec::new(),
            });
            created(name.clone())
        }
        UpdateDomainName { name, patches } => {
            let d = w
                .acct(me)
                .domain_names
                .iter_mut()
                .find(|d| &d.name == name)
                .ok_or_else(|| not_found("NotFoundException", name))?;
            let mut next = d.clone();
            for p in patches {
                let value = Some(p.value.clone()).filter(|v| !v.is_empty());
                match (p.op, p.path.as_str()) {
                    (PatchOp::Replace, "/regionalCertificateArn") => next.certificate_arn = value,
                    (PatchOp::Replace, "/securityPolicy") if ["TLS_1_0", "TLS_1_2"].contains(&p.value.as_str()) => {
                        next.security_policy = value
                    }
                    (PatchOp::Replace, "/mutualTlsAuthentication/truststoreUri") => {
                        next.truststore_uri = value;
                        if next.truststore_uri.is_none() {
                            next.truststore_version = None;
                        }
                    }
                    (PatchOp::Replace, "/mutualTlsAuthentication/truststoreVersion") => next.truststore_version = value,
                    _ => return Err(bad(format!("Invalid patch {} {} = {}", if p.op == PatchOp::Remove { "remove" } else { "replace" }, p.path, p.value))),
                }
            }
            if next.truststore_uri.is_some() && next.security_policy.as_deref() != Some("TLS_1_2") {
                return Err(bad("Mutual TLS requires the TLS_1_2 security policy"));
            }
            *d = next;
            done()
        }
        DeleteDomainName { name } => {
            let a = w.acct(me);
            let before = a.domain_names.len();
            a.domain_names.retain(|d| &d.name != name);
            if a.domain_names.len() == before {
                return Err(not_found("NotFoundException", name));
            }
            done()
        }
    }
}
