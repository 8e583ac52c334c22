//! The in-memory AWS: Route tables' routes.

use crosslink_plan::kinds::RouteOp;

use super::*;

pub(super) fn apply(w: &mut World, me: &str, op: &RouteOp) -> Result<Outcome, CloudError> {
    use RouteOp::*;
    match op {
        CreateRoute { route_table_id, destination, peering_id } => {
            let pcx = known(peering_id)?.to_string();
            let t = w.table(me, route_table_id)?;
            if t.routes.iter().any(|r| r.destination == *destination) {
                return Err(err(ErrorKind::Permanent, "RouteAlreadyExists", format!("{destination} exists")));
            }
            t.routes.push(Route {
                destination: *destination,
                peering_id: Some(pcx),
                other_target: None,
                blackhole: false,
            });
            done()
        }
        ReplaceRoute { route_table_id, destination, peering_id } => {
            let pcx = known(peering_id)?.to_string();
            let t = w.table(me, route_table_id)?;
            let r = t
                .routes
                .iter_mut()
                .find(|r| r.destination == *destination)
                .ok_or_else(|| not_found("InvalidRoute.NotFound", &destination.to_string()))?;
            *r = Route { destination: *destination, peering_id: Some(pcx), other_target: None, blackhole: false };
            done()
        }
        DeleteRoute { route_table_id, destination } => {
            let t = w.table(me, route_table_id)?;
            let before = t.routes.len();
            t.routes.retain(|r| r.destination != *destination);
            if t.routes.len() == before {
                return Err(not_found("InvalidRoute.NotFound", &destination.to_string()));
            }
            done()
        }
    }
}
