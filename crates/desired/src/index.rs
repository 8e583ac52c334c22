//! Lookups into a desired state by name, built once: validation and the planner look up a
//! link's gateway and accounts for every link, and a linear search each time made them
//! quadratic in links (`docs/benchmarks.md`). Each lookup answers exactly what the linear
//! search on [`DesiredState`] answers: the first object of that name, links in desired order.

use std::collections::HashMap;

use crate::model::{Account, Consumer, DesiredState, Gateway, Link};

/// Name -> object maps over one [`DesiredState`].
#[derive(Debug, Default)]
pub struct Index<'a> {
    accounts: HashMap<&'a str, &'a Account>,
    gateways: HashMap<&'a str, &'a Gateway>,
    links: HashMap<&'a str, &'a Link>,
    consumers: HashMap<&'a str, &'a Consumer>,
    /// Every gateway by its VPC id, in desired order.
    gateways_in_vpc: HashMap<&'a str, Vec<&'a Gateway>>,
    /// By the gateway name they give, in desired order.
    links_of: HashMap<&'a str, Vec<&'a Link>>,
    /// By (gateway VPC, service VPC), for links whose gateway is defined and whose transport
    /// routes between the VPCs (peering), in desired order.
    links_of_pair: HashMap<&'a str, HashMap<&'a str, Vec<&'a Link>>>,
}

impl<'a> Index<'a> {
    pub fn new(d: &'a DesiredState) -> Self {
        let mut ix = Index::default();
        for a in &d.accounts {
            ix.accounts.entry(a.metadata.name.as_str()).or_insert(a);
        }
        for g in &d.gateways {
            ix.gateways.entry(g.metadata.name.as_str()).or_insert(g);
            ix.gateways_in_vpc.entry(g.spec.vpc_id.as_str()).or_default().push(g);
        }
        for l in &d.links {
            ix.links.entry(l.metadata.name.as_str()).or_insert(l);
            ix.links_of.entry(l.spec.gateway.as_str()).or_default().push(l);
            if let Some(g) = ix.gateways.get(l.spec.gateway.as_str())
                && l.spec.transport.routes()
            {
                let of_gateway_vpc = ix.links_of_pair.entry(g.spec.vpc_id.as_str()).or_default();
                of_gateway_vpc.entry(l.spec.service.vpc_id.as_str()).or_default().push(l);
            }
        }
        for c in &d.consumers {
            ix.consumers.entry(c.metadata.name.as_str()).or_insert(c);
        }
        ix
    }

    /// As [`DesiredState::consumer`].
    pub fn consumer(&self, name: &str) -> Option<&'a Consumer> {
        self.consumers.get(name).copied()
    }

    /// As [`DesiredState::account`].
    pub fn account(&self, name: &str) -> Option<&'a Account> {
        self.accounts.get(name).copied()
    }

    /// As [`DesiredState::gateway`].
    pub fn gateway(&self, name: &str) -> Option<&'a Gateway> {
        self.gateways.get(name).copied()
    }

    /// The gateways in a VPC, in desired order.
    pub fn gateways_in_vpc(&self, vpc_id: &str) -> &[&'a Gateway] {
        self.gateways_in_vpc.get(vpc_id).map_or(&[], Vec::as_slice)
    }

    /// As [`DesiredState::link`].
    pub fn link(&self, name: &str) -> Option<&'a Link> {
        self.links.get(name).copied()
    }

    /// As [`DesiredState::links_of`].
    pub fn links_of(&self, gateway: &str) -> &[&'a Link] {
        self.links_of.get(gateway).map_or(&[], Vec::as_slice)
    }

    /// The links peered between a gateway VPC and a service VPC (through a defined gateway;
    /// a privateLink link is not among them).
    pub fn links_of_pair(&self, gateway_vpc: &str, service_vpc: &str) -> &[&'a Link] {
        self.links_of_pair.get(gateway_vpc).and_then(|m| m.get(service_vpc)).map_or(&[], Vec::as_slice)
    }
}

impl DesiredState {
    /// Name lookups built once (see [`Index`]).
    pub fn index(&self) -> Index<'_> {
        Index::new(self)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    const TEXT: &str = r#"
apiVersion: crosslink.dev/v1alpha1
kind: Account
metadata: {name: shared}
spec: {accountId: "111111111111", region: eu-central-1}
---
apiVersion: crosslink.dev/v1alpha1
kind: Gateway
metadata: {name: edge}
spec:
  account: shared
  vpcId: vpc-0a0a0a0a0a0a0a0a0
  subnetIds: [subnet-0a1b2c3d4e5f60001]
  routeTableIds: [rtb-0a0a0a0a0a0a0a0a0]
  loadBalancer: {name: edge-nlb}
  api: {name: edge-api, stage: v1}
---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {name: a}
spec:
  gateway: edge
  service: {account: shared, vpcId: vpc-01010101010101010, routeTableIds: [rtb-01010101010101010]}
  targets: [{ip: 10.20.1.15, port: 8080}]
  listenerPort: 9001
  routes: [{path: /a}]
---
apiVersion: crosslink.dev/v1alpha1
kind: Link
metadata: {name: b}
spec:
  gateway: edge
  service: {account: shared, vpcId: vpc-01010101010101010, routeTableIds: [rtb-01010101010101010]}
  targets: [{ip: 10.20.1.16, port: 8080}]
  listenerPort: 9002
  routes: [{path: /b}]
"#;

    #[test]
    fn answers_as_the_linear_searches_do() {
        let d = crate::load_str(Path::new("t.yaml"), TEXT).expect("valid");
        let ix = d.index();
        for name in ["shared", "edge", "a", "b", "missing"] {
            assert_eq!(ix.account(name), d.account(name), "{name}");
            assert_eq!(ix.gateway(name), d.gateway(name), "{name}");
            assert_eq!(ix.link(name), d.link(name), "{name}");
            assert_eq!(ix.links_of(name).to_vec(), d.links_of(name).collect::<Vec<_>>(), "{name}");
        }
        let names: Vec<&str> = ix
            .links_of_pair("vpc-0a0a0a0a0a0a0a0a0", "vpc-01010101010101010")
            .iter()
            .map(|l| l.metadata.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(ix.links_of_pair("vpc-01010101010101010", "vpc-0a0a0a0a0a0a0a0a0").is_empty());
    }
}
