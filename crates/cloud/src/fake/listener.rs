//! The in-memory AWS: Listeners on load balancers. As AWS documents them: a TLS listener needs
//! an ACM certificate of the region and a security policy; changing it to TCP removes both.

use crosslink_plan::kinds::ListenerOp;
use crosslink_plan::kinds::listener::ListenerTls;

use super::*;

/// A TLS listener's certificate and policy, checked as AWS does (CertificateNotFound for a
/// certificate not in the region's ACM; SSLPolicyNotFound for a name ELB does not know).
fn tls_settings(region: &str, tls: &Option<ListenerTls>) -> Result<(String, Option<String>, Option<String>), CloudError> {
    let Some(t) = tls else { return Ok(("TCP".into(), None, None)) };
    if !t.certificate_arn.starts_with(&format!("arn:aws:acm:{region}:")) {
        return Err(err(ErrorKind::Permanent, "CertificateNotFound", format!("Certificate '{}' not found", t.certificate_arn)));
    }
    if !t.ssl_policy.starts_with("ELBSecurityPolicy-") {
        return Err(err(ErrorKind::Permanent, "SSLPolicyNotFound", format!("SSL policy '{}' not found", t.ssl_policy)));
    }
    Ok(("TLS".into(), Some(t.certificate_arn.clone()), Some(t.ssl_policy.clone())))
}

pub(super) fn apply(w: &mut World, me: &str, op: &ListenerOp) -> Result<Outcome, CloudError> {
    use ListenerOp::*;
    match op {
        CreateListener { load_balancer_arn, port, target_group_arn, tls, tags } => {
            let (lb, tg) = (known(load_balancer_arn)?.to_string(), known(target_group_arn)?.to_string());
            let n = w.short_id();
            let a = w.acct(me);
            let (protocol, certificate_arn, ssl_policy) = tls_settings(&a.region, tls)?;
            let Some(l) = a.load_balancers.iter().find(|l| l.arn == lb) else {
                return Err(not_found("LoadBalancerNotFound", &lb));
            };
            // AWS: creating a listener again with the same settings returns it.
            if let Some(x) = a.listeners.iter().find(|x| x.load_balancer_arn == lb && x.port == *port) {
                if x.target_group_arn.as_deref() == Some(tg.as_str()) && x.protocol == protocol {
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
                protocol,
                target_group_arn: Some(tg),
                certificate_arn,
                ssl_policy,
                tags: tags.clone(),
            });
            created(arn)
        }
        ModifyListener { arn, port, target_group_arn, tls, .. } => {
            let tg = known(target_group_arn)?.to_string();
            let a = w.acct(me);
            let (protocol, certificate_arn, ssl_policy) = tls_settings(&a.region, tls)?;
            let lb = a.listeners.iter().find(|x| &x.arn == arn).map(|x| x.load_balancer_arn.clone());
            let Some(lb) = lb else { return Err(not_found("ListenerNotFound", arn)) };
            if a.listeners.iter().any(|x| x.load_balancer_arn == lb && x.port == *port && &x.arn != arn) {
                return Err(err(ErrorKind::Permanent, "DuplicateListener", format!("port {port} is in use")));
            }
            let x = a.listeners.iter_mut().find(|x| &x.arn == arn).expect("found above");
            x.port = *port;
            x.target_group_arn = Some(tg);
            (x.protocol, x.certificate_arn, x.ssl_policy) = (protocol, certificate_arn, ssl_policy);
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
