//! The in-memory AWS: Targets registered in target groups.

use crosslink_plan::kinds::TargetsOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &TargetsOp) -> Result<Outcome, CloudError> {
    use TargetsOp::*;
    match op {
        RegisterTargets { target_group_arn, targets, placement } => {
            let arn = known(target_group_arn)?.to_string();
            let tg = w.tg(me, &arn)?;
            for (ip, port) in targets {
                if !tg.targets.iter().any(|t| t.ip == *ip && t.port == *port) {
                    let mut t = target(*ip, *port);
                    t.availability_zone = placement.zone_of(*ip).map(str::to_string);
                    tg.targets.push(t);
                }
            }
            done()
        }
        DeregisterTargets { target_group_arn, targets, .. } => {
            let tg = w.tg(me, target_group_arn)?;
            tg.targets.retain(|t| !targets.contains(&(t.ip, t.port)));
            done()
        }
    }
}
