//! The in-memory AWS: Listeners on load balancers.

use crosslink_plan::kinds::ListenerOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &ListenerOp) -> Result<Outcome, CloudError> {
    use ListenerOp::*;
    match op {
        CreateListener { load_balancer_arn, port, target_group_arn, tags } => {
            let (lb, tg) = (known(load_balancer_arn)?.to_string(), known(target_group_arn)?.to_string());
            let n = w.short_id();
            let a = w.acct(me);
            let Some(l) = a.load_balancers.iter().find(|l| l.arn == lb) else {
                return Err(not_found("LoadBalancerNotFound", &lb));
            };
            // AWS: creating a listener again with the same settings returns it.
            if let Some(x) = a.listeners.iter().find(|x| x.load_balancer_arn == lb && x.port == *port) {
                if x.target_group_arn.as_deref() == Some(tg.as_str()) {
                    return created(x.arn.clone());
                }
                return Err(err(ErrorKind::Permanent, "DuplicateListener", format!("port {port} is in use")));
            }
            if !a.target_groups.iter().any(|t| t.arn == tg) {
                return Err(not_found("TargetGroupNotFound", &tg));
            }
            let arn = format!("{}/{n}", l.arn.replace(":loadbalancer/", ":listener/"));
            a.listeners.push(Listener {
                arn: arn.clone(),
                load_balancer_arn: lb,
                port: *port,
                protocol: "TCP".into(),
                target_group_arn: Some(tg),
                tags: tags.clone(),
            });
            created(arn)
        }
        ModifyListener { arn, port, target_group_arn } => {
            let tg = known(target_group_arn)?.to_string();
            let a = w.acct(me);
            let lb = a.listeners.iter().find(|x| &x.arn == arn).map(|x| x.load_balancer_arn.clone());
            let Some(lb) = lb else { return Err(not_found("ListenerNotFound", arn)) };
            if a.listeners.iter().any(|x| x.load_balancer_arn == lb && x.port == *port && &x.arn != arn) {
                return Err(err(ErrorKind::Permanent, "DuplicateListener", format!("port {port} is in use")));
            }
            let x = a.listeners.iter_mut().find(|x| &x.arn == arn).expect("found above");
            x.port = *port;
            x.target_group_arn = Some(tg);
            done()
        }
        DeleteListener { arn } => {
            let a = w.acct(me);
            let before = a.listeners.len();
            a.listeners.retain(|x| &x.arn != arn);
            if before == a.listeners.len() {
                return Err(not_found("ListenerNotFound", arn));
            }
            done()
        }
    }
}
