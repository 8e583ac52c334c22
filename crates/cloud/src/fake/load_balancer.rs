//! The in-memory AWS: Network load balancers (idempotent creates by name) and ELBv2 tags.

use crosslink_plan::kinds::LoadBalancerOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &LoadBalancerOp) -> Result<Outcome, CloudError> {
    use LoadBalancerOp::*;
    match op {
        CreateLoadBalancer { name, subnet_ids, tags } => {
            let n = w.short_id();
            let a = w.acct(me);
            // AWS: creating a load balancer again with the same settings returns it.
            if let Some(l) = a.load_balancers.iter().find(|l| &l.name == name) {
                if &l.subnet_ids == subnet_ids {
                    return Ok(Outcome {
                        dns_name: Some(l.dns_name.clone()),
                        ..Outcome::created(l.arn.clone()).in_state(l.state.clone())
                    });
                }
                return Err(err(ErrorKind::Permanent, "DuplicateLoadBalancerName", format!("{name} exists")));
            }
            let vpc = subnet_ids.first().and_then(|s| a.subnets.get(s)).cloned().ok_or_else(|| {
                not_found("SubnetNotFound", subnet_ids.first().map(String::as_str).unwrap_or("-"))
            })?;
            let arn = format!("arn:aws:elasticloadbalancing:{}:{me}:loadbalancer/net/{name}/{n}", a.region);
            let dns_name = format!("{name}-{n}.elb.{}.amazonaws.com", a.region);
            a.load_balancers.push(LoadBalancer {
                arn: arn.clone(),
                name: name.clone(),
                dns_name: dns_name.clone(),
                vpc_id: vpc,
                kind: "network".into(),
                internal: true,
                state: "active".into(),
                subnet_ids: subnet_ids.clone(),
                tags: tags.clone(),
            });
            Ok(Outcome { dns_name: Some(dns_name), ..Outcome::created(arn).in_state("active") })
        }
        DeleteLoadBalancer { arn } => {
            let a = w.acct(me);
            if a.vpc_links.iter().any(|v| v.target_arns.contains(arn) && v.status != "DELETING") {
                return Err(err(ErrorKind::Conflict, "ResourceInUse", "a VPC link uses the load balancer"));
            }
            let before = a.load_balancers.len();
            a.load_balancers.retain(|l| &l.arn != arn);
            if before == a.load_balancers.len() {
                return Err(not_found("LoadBalancerNotFound", arn));
            }
            a.listeners.retain(|x| &x.load_balancer_arn != arn);
            done()
        }
        AddElbTags { arn, tags } => {
            elb_tags(&mut w.acct(me).state, arn)?.extend(tags.clone());
            done()
        }
        RemoveElbTags { arn, keys } => {
            elb_tags(&mut w.acct(me).state, arn)?.retain(|k, _| !keys.contains(k));
            done()
        }
    }
}

/// The tags of an ELBv2 resource (load balancer, target group or listener), by its ARN.
fn elb_tags<'a>(a: &'a mut AccountState, arn: &str) -> Result<&'a mut Tags, CloudError> {
    a.load_balancers
        .iter_mut()
        .find(|x| x.arn == arn)
        .map(|x| &mut x.tags)
        .or_else(|| a.target_groups.iter_mut().find(|x| x.arn == arn).map(|x| &mut x.tags))
        .or_else(|| a.listeners.iter_mut().find(|x| x.arn == arn).map(|x| &mut x.tags))
        .ok_or_else(|| not_found("LoadBalancerNotFound", arn))
}
