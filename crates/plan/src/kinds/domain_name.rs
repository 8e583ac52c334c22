//! A gateway's regional custom domain name: its ACM certificate, TLS security policy and mutual
//! TLS truststore. Tagged like everything crosslink makes (owner `Gateway/<name>`); a desired
//! name that exists without this instance's tag is a problem, never a takeover. DNS is not
//! managed: the report says which record to create and where it points.

use serde::{Deserialize, Serialize};

use crosslink_desired::{CustomDomain, TlsPolicy};

use super::KindOp;
use crate::model::{Reason, Verb};
use crate::observed::{AccountState, Tags};
use crate::op::{Op, Patch, Ref, Service};
use crate::planner::{ApiCx, Planner, Prunable};

// ---- What is observed ------------------------------------------------------------------------

/// Its field of `AccountState` (`domain_names`): the account's custom domain names, with the
/// base path mappings of crosslink's own.
pub type Observed = Vec<DomainName>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DomainName {
    pub name: String,
    /// What the DNS record points at (`d-….execute-api.<region>.amazonaws.com`), and the hosted
    /// zone of an alias record to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regional_domain_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regional_hosted_zone_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truststore_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truststore_version: Option<String>,
    pub tags: Tags,
    #[serde(default)]
    pub mappings: Vec<BasePathMapping>,
}

/// A base path mapping of a domain name (`(none)` is the root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasePathMapping {
    pub base_path: String,
    pub rest_api_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
}

// ---- Operations -------------------------------------------------------------------------------

/// Mutual TLS as CreateDomainName takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Truststore {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "PascalCase", rename_all_fields = "camelCase")]
pub enum DomainNameOp {
    /// A REGIONAL domain name with the certificate, policy and truststore.
    CreateDomainName {
        name: String,
        certificate_arn: String,
        security_policy: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        truststore: Option<Truststore>,
        tags: Tags,
    },
    UpdateDomainName { name: String, patches: Vec<Patch> },
    /// Its base path mappings go with it.
    DeleteDomainName { name: String },
}

impl KindOp for DomainNameOp {
    fn service(&self) -> Service {
        Service::ApiGateway
    }

    fn name(&self) -> &'static str {
        match self {
            Self::CreateDomainName { .. } => "CreateDomainName",
            Self::UpdateDomainName { .. } => "UpdateDomainName",
            Self::DeleteDomainName { .. } => "DeleteDomainName",
        }
    }

    fn target_id(&self) -> String {
        match self {
            Self::CreateDomainName { name, .. } | Self::UpdateDomainName { name, .. } | Self::DeleteDomainName { name } => {
                name.clone()
            }
        }
    }

    fn refs(&self) -> Vec<&Ref> {
        vec![]
    }

    fn refs_mut(&mut self) -> Vec<&mut Ref> {
        vec![]
    }

    fn lets_chain(&self, state: Option<&str>) -> bool {
        let _ = state;
        true
    }

    fn on_new_resource(&self) -> bool {
        false
    }

    fn is_delete(&self) -> bool {
        matches!(self, Self::DeleteDomainName { .. })
    }
}

// ---- Clean-up and tags (read by the planner's generic machinery) ------------------------------

pub(crate) fn prunable(st: &AccountState) -> Vec<Prunable<'_>> {
    st.domain_names
        .iter()
        .map(|d| {
            let delete = DomainNameOp::DeleteDomainName { name: d.name.clone() }.into();
            Prunable::plain(&d.tags, &d.name, format!("custom domain {}", d.name), delete)
        })
        .collect()
}

pub(crate) use crate::planner::nothing_first as before_delete;
pub(crate) use crate::planner::untagged as tag_op;
pub(crate) use crate::planner::not_releasable as untag_op;

// ---- Planning (the API stage) -----------------------------------------------------------------

/// What the gateway's custom domain hands on to its base path mapping.
#[derive(Default)]
pub(crate) struct Out<'a> {
    /// The desired domain, once it is the gateway's (or being made), and the action making it.
    pub(crate) domain: Option<&'a CustomDomain>,
    pub(crate) live: Option<&'a DomainName>,
    pub(crate) action: Option<usize>,
}

/// The DNS record that makes the name reach the gateway: for people (`/status`).
pub fn dns_record(d: &DomainName) -> Option<String> {
    let target = d.regional_domain_name.as_deref()?;
    let zone = d.regional_hosted_zone_id.as_deref().map(|z| format!(" (or an alias A record in hosted zone {z})")).unwrap_or_default();
    Some(format!("{} CNAME {target}{zone}", d.name))
}

fn truststore(d: &CustomDomain) -> Option<Truststore> {
    d.mutual_tls.as_ref().map(|m| Truststore { uri: m.truststore_uri.clone(), version: m.truststore_version.clone() })
}

/// The gateway's custom domain: made when missing, its certificate, policy and truststore
/// repaired in place; one the gateway owns that the YAML no longer names is deleted (with its
/// mappings). A name taken by a domain crosslink does not own is a problem.
pub(crate) fn plan<'a>(p: &mut Planner<'a>, cx: &mut ApiCx<'a, '_>) -> Option<()> {
    let (gw, subject) = (cx.gw, cx.subject.clone());
    let account = gw.account.as_str();
    let want = gw.gw.spec.api.custom_domain.as_deref();
    let st = gw.state;
    let mine: Vec<&DomainName> = st.domain_names.iter().filter(|d| p.owned_by(&d.tags, &gw.owner)).collect();
    for d in mine {
        p.claimed.insert(d.name.clone());
        if want.is_some_and(|w| w.domain_name == d.name) {
            continue;
        }
        p.add(
            &subject,
            account,
            format!("custom domain {}", d.name),
            Verb::Delete,
            Reason::NoLongerDesired,
            Op::DomainName(DomainNameOp::DeleteDomainName { name: d.name.clone() }),
            vec![],
        );
    }
    let Some(want) = want else { return Some(()) };
    let live = st.domain_names.iter().find(|d| d.name == want.domain_name);
    let Some(live) = live else {
        let a = p.add(
            &subject,
            account,
            format!("custom domain {}", want.domain_name),
            Verb::Create,
            Reason::Missing,
            Op::DomainName(DomainNameOp::CreateDomainName {
                name: want.domain_name.clone(),
                certificate_arn: want.certificate_arn.clone(),
                security_policy: want.security_policy.as_str().into(),
                truststore: truststore(want),
                tags: gw.want_tags.clone(),
            }),
            vec![],
        );
        cx.out.domain_name = Out { domain: Some(want), live: None, action: Some(a) };
        return Some(());
    };
    if !p.owned_by(&live.tags, &gw.owner) {
        p.problem(
            &subject,
            "NameTaken",
            format!("the custom domain {} exists and is not this gateway's", want.domain_name),
            Some("crosslink never takes over a domain it did not make: delete it, or give the gateway another domainName".into()),
        );
        return None;
    }
    cx.out.domain_name = Out { domain: Some(want), live: Some(live), action: None };
    p.report(&subject).resources.insert("customDomain".into(), live.name.clone());
    if let Some(dns) = dns_record(live) {
        p.report(&subject).resources.insert("dnsRecord".into(), dns);
    }
    let mut patches = Vec::new();
    let mut first: Option<Reason> = None;
    let mut weakening = Vec::new();
    let mut differs = |field: &str, live: Option<&str>, want: Option<&str>, path: &str, patches: &mut Vec<Patch>| {
        if live == want {
            return;
        }
        first.get_or_insert(Reason::Drift {
            field: format!("customDomain.{field}"),
            live: live.unwrap_or("(none)").into(),
            desired: want.unwrap_or("(none)").into(),
        });
        patches.push(Patch::replace(path, want.unwrap_or_default()));
    };
    differs("certificateArn", live.certificate_arn.as_deref(), Some(&want.certificate_arn), "/regionalCertificateArn", &mut patches);
    let policy = want.security_policy.as_str();
    let live_policy = live.security_policy.as_deref().unwrap_or("TLS_1_2");
    if live_policy != policy {
        if want.security_policy == TlsPolicy::Tls10 {
            weakening.push(format!("custom domain {}: TLS security policy {live_policy} -> {policy}", live.name));
        }
        differs("securityPolicy", Some(live_policy), Some(policy), "/securityPolicy", &mut patches);
    }
    let want_uri = want.mutual_tls.as_ref().map(|m| m.truststore_uri.as_str());
    if live.truststore_uri.is_some() && want_uri.is_none() {
        weakening.push(format!("custom domain {}: mutual TLS turned off", live.name));
    }
    differs(
        "mutualTls.truststoreUri",
        live.truststore_uri.as_deref(),
        want_uri,
        "/mutualTlsAuthentication/truststoreUri",
        &mut patches,
    );
    if let Some(m) = &want.mutual_tls
        && m.truststore_version.is_some()
    {
        differs(
            "mutualTls.truststoreVersion",
            live.truststore_version.as_deref(),
            m.truststore_version.as_deref(),
            "/mutualTlsAuthentication/truststoreVersion",
            &mut patches,
        );
    }
    if let Some(reason) = first {
        let a = p.add(
            &subject,
            account,
            format!("custom domain {}", live.name),
            Verb::Update,
            reason,
            Op::DomainName(DomainNameOp::UpdateDomainName { name: live.name.clone(), patches }),
            vec![],
        );
        if !weakening.is_empty() {
            p.plan.weakening.insert(a, weakening.join("; "));
        }
    }
    Some(())
}
