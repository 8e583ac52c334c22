//! The in-memory AWS: VPC endpoint services (PrivateLink), as AWS documents them: made on an
//! active Network Load Balancer of the same account, acceptance required as asked, only the
//! allowed principals' accounts may connect, a connection waits in `pendingAcceptance` until the
//! service account accepts it, and a service with connections cannot be deleted.

use crosslink_plan::kinds::EndpointServiceOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &EndpointServiceOp) -> Result<Outcome, CloudError> {
    use EndpointServiceOp::*;
    match op {
        CreateVpcEndpointServiceConfiguration { load_balancer_arn, tags } => {
            let lb = known(load_balancer_arn)?.to_string();
            let id = w.id("vpce-svc-");
            let a = w.acct(me);
            match a.load_balancers.iter().find(|l| l.arn == lb) {
                None => return Err(err(ErrorKind::Permanent, "InvalidParameter", format!("load balancer {lb} not found"))),
                Some(l) if l.state != "active" => {
                    return Err(err(ErrorKind::Conflict, "InvalidParameter", format!("load balancer {lb} is {}", l.state)));
                }
                Some(_) => {}
            }
            if a.endpoint_services.iter().any(|s| s.load_balancer_arns.contains(&lb)) {
                return Err(err(ErrorKind::Conflict, "InvalidParameter", format!("{lb} is already used by an endpoint service")));
            }
            let service_name = format!("com.amazonaws.vpce.{}.{id}", a.region);
            a.endpoint_services.push(EndpointService {
                id: id.clone(),
                service_name: service_name.clone(),
                load_balancer_arns: vec![lb],
                acceptance_required: true,
                allowed_principals: vec![],
                state: "Available".into(),
                tags: tags.clone(),
            });
            Ok(Outcome { service_name: Some(service_name), ..Outcome::created(id).in_state("Available") })
        }
        ModifyVpcEndpointServicePermissions { service_id, add_allowed_principals, remove_allowed_principals } => {
            let id = known(service_id)?.to_string();
            let s = service(w, me, &id)?;
            s.allowed_principals.retain(|p| !remove_allowed_principals.contains(p));
            for p in add_allowed_principals {
                if !s.allowed_principals.contains(p) {
                    s.allowed_principals.push(p.clone());
                }
            }
            done()
        }
        ModifyVpcEndpointServiceConfiguration { service_id, acceptance_required } => {
            service(w, me, service_id)?.acceptance_required = *acceptance_required;
            done()
        }
        AcceptVpcEndpointConnections { service_id, endpoint_ids } => {
            let name = service(w, me, service_id)?.service_name.clone();
            for id in endpoint_ids {
                let e = w
                    .accounts
                    .values_mut()
                    .flat_map(|a| a.state.endpoints.iter_mut())
                    .find(|e| &e.id == id && e.service_name == name)
                    .ok_or_else(|| not_found("InvalidVpcEndpointId.NotFound", id))?;
                if e.state != "pendingAcceptance" {
                    return Err(err(ErrorKind::Conflict, "InvalidState", format!("{id} is {}", e.state)));
                }
                e.state = "available".into();
            }
            done()
        }
        DeleteVpcEndpointServiceConfigurations { service_id } => {
            let name = service(w, me, service_id)?.service_name.clone();
            let connected = w
                .accounts
                .values()
                .flat_map(|a| &a.state.endpoints)
                .any(|e| e.service_name == name && matches!(e.state.as_str(), "available" | "pendingAcceptance"));
            if connected {
                return Err(err(
                    ErrorKind::Conflict,
                    "ExistingVpcEndpointConnections",
                    format!("{service_id} has endpoint connections"),
                ));
            }
            w.acct(me).endpoint_services.retain(|s| &s.id != service_id);
            done()
        }
    }
}

fn service<'a>(w: &'a mut World, me: &str, id: &str) -> Result<&'a mut EndpointService, CloudError> {
    w.acct(me)
        .endpoint_services
        .iter_mut()
        .find(|s| s.id == id)
        .ok_or_else(|| not_found("InvalidVpcEndpointServiceId.NotFound", id))
}
