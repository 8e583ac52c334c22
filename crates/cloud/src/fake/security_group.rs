//! The in-memory AWS: security groups (names unique per VPC, duplicate rules refused, a group an
//! endpoint uses cannot be deleted).

use crosslink_plan::kinds::SecurityGroupOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &SecurityGroupOp) -> Result<Outcome, CloudError> {
    use SecurityGroupOp::*;
    match op {
        CreateSecurityGroup { name, vpc_id, tags, .. } => {
            let id = w.id("sg-");
            let a = w.acct(me);
            if !a.vpcs.contains_key(vpc_id) {
                return Err(not_found("InvalidVpcID.NotFound", vpc_id));
            }
            if a.security_groups.iter().any(|g| &g.name == name && &g.vpc_id == vpc_id) {
                return Err(err(ErrorKind::Conflict, "InvalidGroup.Duplicate", format!("{name} exists in {vpc_id}")));
            }
            a.security_groups.push(SecurityGroup {
                id: id.clone(),
                name: name.clone(),
                vpc_id: vpc_id.clone(),
                ingress: vec![],
                tags: tags.clone(),
            });
            created(id)
        }
        AuthorizeSecurityGroupIngress { group_id, rules } => {
            let id = known(group_id)?.to_string();
            let g = group(w, me, &id)?;
            if let Some(r) = rules.iter().find(|r| g.ingress.contains(r)) {
                return Err(err(ErrorKind::Conflict, "InvalidPermission.Duplicate", format!("{r:?} exists in {id}")));
            }
            g.ingress.extend(rules.iter().cloned());
            done()
        }
        RevokeSecurityGroupIngress { group_id, rules } => {
            group(w, me, group_id)?.ingress.retain(|r| !rules.contains(r));
            done()
        }
        DeleteSecurityGroup { group_id } => {
            let a = w.acct(me);
            if a.endpoints.iter().any(|e| e.security_group_ids.contains(group_id)) {
                return Err(err(ErrorKind::Conflict, "DependencyViolation", format!("{group_id} has a dependent object")));
            }
            let before = a.security_groups.len();
            a.security_groups.retain(|g| &g.id != group_id);
            if before == a.security_groups.len() {
                return Err(not_found("InvalidGroup.NotFound", group_id));
            }
            done()
        }
    }
}

fn group<'a>(w: &'a mut World, me: &str, id: &str) -> Result<&'a mut SecurityGroup, CloudError> {
    w.acct(me).security_groups.iter_mut().find(|g| g.id == id).ok_or_else(|| not_found("InvalidGroup.NotFound", id))
}
