//! The in-memory AWS: interface VPC endpoints (PrivateLink), as AWS documents them: the service
//! must exist and allow the caller's account, one network interface per subnet (an address of
//! the subnet's VPC, in the subnet's zone), `pendingAcceptance` until the service account accepts
//! when the service requires it, `available` at once otherwise.

use crosslink_plan::kinds::EndpointOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &EndpointOp) -> Result<Outcome, CloudError> {
    use EndpointOp::*;
    match op {
        CreateVpcEndpoint { vpc_id, service_name, subnet_ids, security_group_id, tags } => {
            let name = known(service_name)?.to_string();
            let sg = known(security_group_id)?.to_string();
            let principal = format!("arn:aws:iam::{me}:root");
            let acceptance = w
                .accounts
                .iter()
                .flat_map(|(owner, a)| a.state.endpoint_services.iter().map(move |s| (owner, s)))
                .find(|(owner, s)| s.service_name == name && (*owner == me || s.allowed_principals.contains(&principal)))
                .map(|(_, s)| s.acceptance_required)
                .ok_or_else(|| err(ErrorKind::Permanent, "InvalidServiceName", format!("the service {name} does not exist")))?;
            let id = w.id("vpce-");
            let first = w.next;
            let a = w.acct(me);
            let vpc = a.vpcs.get(vpc_id).cloned().ok_or_else(|| not_found("InvalidVpcID.NotFound", vpc_id))?;
            if !a.security_groups.iter().any(|g| g.id == sg) {
                return Err(not_found("InvalidGroupId.NotFound", &sg));
            }
            let mut interfaces = Vec::new();
            for (i, s) in subnet_ids.iter().enumerate() {
                if a.subnets.get(s) != Some(vpc_id) {
                    return Err(not_found("InvalidSubnetID.NotFound", s));
                }
                // An address of the VPC, not taken by another endpoint.
                let net = vpc.cidrs[0];
                let base = u32::from(net.network());
                let offset = 100 + u32::try_from(first % 1000).unwrap_or(0) * 8 + u32::try_from(i).unwrap_or(0);
                let ip = Ipv4Addr::from(base + offset % (net.hosts().count().max(2) as u32 - 1));
                let zone = format!("{}{}", a.region, char::from(b'a' + u8::try_from(i % 6).unwrap_or(0)));
                interfaces.push(EndpointInterface { ip, availability_zone: zone });
            }
            let state = if acceptance { "pendingAcceptance" } else { "available" };
            a.endpoints.push(Endpoint {
                id: id.clone(),
                vpc_id: vpc_id.clone(),
                service_name: name,
                state: state.into(),
                subnet_ids: subnet_ids.clone(),
                security_group_ids: vec![sg],
                interfaces,
                tags: tags.clone(),
            });
            Ok(Outcome::created(id).in_state(state))
        }
        DeleteVpcEndpoints { endpoint_id } => {
            let a = w.acct(me);
            let before = a.endpoints.len();
            a.endpoints.retain(|e| &e.id != endpoint_id);
            if before == a.endpoints.len() {
                return Err(not_found("InvalidVpcEndpointId.NotFound", endpoint_id));
            }
            done()
        }
    }
}
