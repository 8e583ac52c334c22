//! The in-memory AWS: VPC links (their status as AWS and moto set it).

use crosslink_plan::kinds::VpcLinkOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &VpcLinkOp) -> Result<Outcome, CloudError> {
    use VpcLinkOp::*;
    match op {
        CreateVpcLink { name, load_balancer_arn, tags } => {
            let lb = known(load_balancer_arn)?.to_string();
            let id = w.short_id();
            let (status, status_message) = match w.vpc_link_fates.pop_front() {
                Some((status, message)) => (status, Some(message)),
                None => (w.new_vpc_link_status.clone(), None),
            };
            w.acct(me).vpc_links.push(VpcLink {
                id: id.clone(),
                name: name.clone(),
                target_arns: vec![lb],
                status: status.clone(),
                status_message,
                tags: tags.clone(),
            });
            Ok(Outcome::created(id).in_state(status))
        }
        DeleteVpcLink { id } => {
            let a = w.acct(me);
            let before = a.vpc_links.len();
            a.vpc_links.retain(|v| &v.id != id);
            if before == a.vpc_links.len() {
                return Err(not_found("NotFoundException", id));
            }
            done()
        }
        // TagResource with the VPC link's ARN: tags merged.
        TagVpcLink { id, tags } => {
            let v = w.acct(me).vpc_links.iter_mut().find(|v| &v.id == id).ok_or_else(|| not_found("NotFoundException", id))?;
            v.tags.extend(tags.clone());
            done()
        }
        UntagVpcLink { id, keys } => {
            let v = w.acct(me).vpc_links.iter_mut().find(|v| &v.id == id).ok_or_else(|| not_found("NotFoundException", id))?;
            v.tags.retain(|k, _| !keys.contains(k));
            done()
        }
    }
}
