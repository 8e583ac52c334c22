//! The in-memory AWS: Target groups (idempotent creates by name, in-use errors).

use crosslink_plan::kinds::TargetGroupOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &TargetGroupOp) -> Result<Outcome, CloudError> {
    use TargetGroupOp::*;
    match op {
        CreateTargetGroup { name, vpc_id, port, health_check, tags } => {
            let n = w.short_id();
            let a = w.acct(me);
            // AWS: creating a target group again with the same settings returns it.
            if let Some(t) = a.target_groups.iter().find(|t| &t.name == name) {
                if &t.vpc_id == vpc_id && t.port == *port && &t.health_check == health_check {
                    return created(t.arn.clone());
                }
                return Err(err(ErrorKind::Permanent, "DuplicateTargetGroupName", format!("{name} exists")));
            }
            let arn = format!("arn:aws:elasticloadbalancing:{}:{me}:targetgroup/{name}/{n}", a.region);
            a.target_groups.push(TargetGroup {
                arn: arn.clone(),
                name: name.clone(),
                vpc_id: vpc_id.clone(),
                protocol: "TCP".into(),
                port: *port,
                target_type: "ip".into(),
                health_check: health_check.clone(),
                tags: tags.clone(),
                targets: vec![],
            });
            created(arn)
        }
        ModifyTargetGroup { arn, health_check } => {
            let tg = w.tg(me, arn)?;
            tg.health_check = health_check.clone();
            done()
        }
        DeleteTargetGroup { arn } => {
            let a = w.acct(me);
            if a.listeners.iter().any(|x| x.target_group_arn.as_ref() == Some(arn)) {
                return Err(err(ErrorKind::Conflict, "ResourceInUse", "a listener uses the target group"));
            }
            let before = a.target_groups.len();
            a.target_groups.retain(|t| &t.arn != arn);
            if before == a.target_groups.len() {
                return Err(not_found("TargetGroupNotFound", arn));
            }
            done()
        }
    }
}
