//! The in-memory AWS: Peering connections: requested by one account, visible to both, accepted by the accepter.

use crosslink_plan::kinds::PeeringOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &PeeringOp) -> Result<Outcome, CloudError> {
    use PeeringOp::*;
    match op {
        CreateVpcPeeringConnection { vpc_id, peer_vpc_id, peer_owner_id, tags, .. } => {
            if !w.acct(me).vpcs.contains_key(vpc_id) {
                return Err(not_found("InvalidVpcID.NotFound", vpc_id));
            }
            if !w.acct(peer_owner_id).vpcs.contains_key(peer_vpc_id) {
                return Err(not_found("InvalidVpcID.NotFound", peer_vpc_id));
            }
            let id = w.id("pcx-");
            let status = w.peering_fates.pop_front().unwrap_or(PeeringStatus::PendingAcceptance);
            w.peerings.push(Peering {
                id: id.clone(),
                requester_vpc: vpc_id.clone(),
                requester_account: me.into(),
                accepter_vpc: peer_vpc_id.clone(),
                accepter_account: peer_owner_id.clone(),
                status,
                tags: tags.clone(),
                accepter_dns_resolution: false,
            });
            if w.accepter_lag > 0 {
                w.unseen_by_accepter.insert(id.clone(), w.accepter_lag);
            }
            Ok(Outcome::created(id).in_state(status.as_str()))
        }
        AcceptVpcPeeringConnection { peering_id } => {
            let id = known(peering_id)?;
            let p = w.peerings.get_mut(id).ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", id))?;
            if p.accepter_account == me
                && let Some(n) = w.unseen_by_accepter.get_mut(id)
            {
                *n -= 1;
                if *n == 0 {
                    w.unseen_by_accepter.remove(id);
                }
                return Err(not_found("InvalidVpcPeeringConnectionID.NotFound", id));
            }
            let p = w.peerings.get_mut(id).expect("found above");
            if p.accepter_account != me {
                return Err(err(ErrorKind::Permanent, "OperationNotPermitted", "only the accepter can accept"));
            }
            if p.status != PeeringStatus::PendingAcceptance {
                return Err(err(ErrorKind::Conflict, "InvalidStateTransition", format!("{id} is {:?}", p.status)));
            }
            p.status = PeeringStatus::Active;
            Ok(Outcome::default().in_state(PeeringStatus::Active.as_str()))
        }
        SetPeeringDnsResolution { peering_id, allow } => {
            let peering_id = known(peering_id)?.to_string();
            let p = w
                .peerings
                .get_mut(&peering_id)
                .filter(|p| !p.status.is_dead())
                .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", &peering_id))?;
            if p.accepter_account != me {
                return Err(err(
                    ErrorKind::Permanent,
                    "OperationNotPermitted",
                    "the accepter's options are the accepter's",
                ));
            }
            if p.status != PeeringStatus::Active {
                return Err(err(
                    ErrorKind::Conflict,
                    "InvalidStateTransition",
                    format!("{peering_id} is {:?}", p.status),
                ));
            }
            p.accepter_dns_resolution = *allow;
            done()
        }
        DeleteVpcPeeringConnection { peering_id } => {
            let p = w
                .peerings
                .get_mut(peering_id)
                .filter(|p| !p.status.is_dead())
                .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", peering_id))?;
            p.status = PeeringStatus::Deleted;
            done()
        }
        CreateEc2Tags { resource_id, tags } => {
            let p = w
                .peerings
                .get_mut(resource_id)
                .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", resource_id))?;
            p.tags.extend(tags.clone());
            done()
        }
        DeleteEc2Tags { resource_id, keys } => {
            let p = w
                .peerings
                .get_mut(resource_id)
                .ok_or_else(|| not_found("InvalidVpcPeeringConnectionID.NotFound", resource_id))?;
            p.tags.retain(|k, _| !keys.contains(k));
            done()
        }
    }
}
