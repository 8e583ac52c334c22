//! The tags that mark what crosslink owns. Nothing without `managed-by = <instance>` is ever
//! modified or deleted.

use crate::Subject;
use crate::observed::Tags;

pub const MANAGED_BY: &str = "crosslink.dev/managed-by";
/// `Link/<name>`, `Gateway/<name>`, `Peering/<gateway vpc>/<service vpc>` or `Consumer/<name>`.
pub const OWNER: &str = "crosslink.dev/owner";
/// `Delete` or `Retain`: what to do once the owner leaves desired state (it cannot be read from
/// YAML then).
pub const DELETION_POLICY: &str = "crosslink.dev/deletion-policy";
/// On the stage: hash of the API definition last deployed there.
pub const DEPLOYED_HASH: &str = "crosslink.dev/deployed-hash";
/// On the stage: the settings groups crosslink set there (space-separated), reset when they
/// leave the YAML.
pub const STAGE_SETTINGS: &str = "crosslink.dev/stage-settings";
/// On a consumer's API key: its generation (`apiKey.generation`); raising it rotates the key.
pub const KEY_GENERATION: &str = "crosslink.dev/key-generation";
pub const DEFAULT_INSTANCE: &str = "crosslink";
/// On a resource crosslink adopted rather than created: its name need not be the one crosslink
/// derives.
pub const ADOPTED: &str = "crosslink.dev/adopted";
/// On the resources of a link's transport other than peering (`privateLink`): the service-side
/// NLB, target group and listener, the endpoint service, the gateway's endpoint and its security
/// group. They are the link's (owner `Link/<name>`) but not its gateway chain: the gateway-side
/// planning leaves them to the transport's.
pub const TRANSPORT: &str = "crosslink.dev/transport";

/// Whether a resource belongs to a link's transport (see [`TRANSPORT`]).
pub fn is_transport(tags: &Tags) -> bool {
    tags.contains_key(TRANSPORT)
}

pub fn is_managed(tags: &Tags, instance: &str) -> bool {
    tags.get(MANAGED_BY).is_some_and(|v| v == instance)
}

pub fn owner(tags: &Tags) -> Option<&str> {
    tags.get(OWNER).map(String::as_str)
}

/// The subject the owner tag names, if it names one.
pub fn owner_subject(tags: &Tags) -> Option<Subject> {
    owner(tags).and_then(Subject::from_owner_tag)
}

pub fn link_owner(link: &str) -> String {
    Subject::Link(link.to_string()).owner_tag()
}

pub fn gateway_owner(gateway: &str) -> String {
    Subject::Gateway(gateway.to_string()).owner_tag()
}

pub fn peering_owner(gateway_vpc: &str, service_vpc: &str) -> String {
    Subject::Peering(gateway_vpc.to_string(), service_vpc.to_string()).owner_tag()
}

pub fn consumer_owner(consumer: &str) -> String {
    Subject::Consumer(consumer.to_string()).owner_tag()
}
