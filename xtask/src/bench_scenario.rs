//! The benchmark's scenario: G gateways in A gateway accounts, S service accounts with one VPC
//! each, and N links, as desired-state YAML; and the bound on the reads a pass with nothing to do
//! should need, computed from the scenario.
//!
//! Each service account is homed in one gateway account (s mod A) and its links go to that
//! account's gateways, as teams usually sit behind one shared-services account. At N = 1,000:
//! 20 gateways of 50 links (the NLB listener quota) in 5 gateway accounts, 50 service accounts
//! of 20 links, 200 peerings (10 per gateway VPC, 4 per service VPC: far below the quotas), every
//! route table under 50 routes.

use std::fmt::Write as _;

use ipnet::Ipv4Net;

/// Targets each link registers (two instances of the service).
pub const TARGETS_PER_LINK: usize = 2;
/// Every `SECOND_ROUTE_EVERY`-th link also serves `/internal/<link>` for GET and POST.
pub const SECOND_ROUTE_EVERY: usize = 4;
pub const STAGE: &str = "v1";

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Scenario {
    pub links: usize,
    pub gateways: usize,
    pub gateway_accounts: usize,
    pub service_accounts: usize,
}

/// One link of the scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSpec {
    pub index: usize,
    pub name: String,
    pub gateway: usize,
    pub service: usize,
    pub port: u16,
    pub targets: Vec<String>,
    /// (path, methods)
    pub routes: Vec<(String, &'static str)>,
}

/// The ids the seeding created, by gateway and by service account.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    /// (vpc id, subnet ids, route table id)
    pub gateways: Vec<(String, Vec<String>, String)>,
    pub services: Vec<(String, String)>,
}

impl Scenario {
    /// The scenario of the issue for N links: 50 links per gateway, 4 gateways per gateway
    /// account, 20 links per service account (at least 2 service accounts).
    pub fn for_links(links: usize) -> Scenario {
        let gateways = links.div_ceil(50).max(1);
        let gateway_accounts = gateways.div_ceil(4).max(1);
        let service_accounts = links.div_ceil(20).max(2);
        Scenario { links, gateways, gateway_accounts, service_accounts }
    }

    pub fn gateway_account_of(&self, gateway: usize) -> usize {
        gateway % self.gateway_accounts
    }

    pub fn gateway_account_id(a: usize) -> String {
        format!("{:012}", 100_000_000_000u64 + a as u64)
    }

    pub fn service_account_id(s: usize) -> String {
        format!("{:012}", 200_000_000_000u64 + s as u64)
    }

    pub fn gateway_account_name(a: usize) -> String {
        format!("gw-{a}")
    }

    pub fn service_account_name(s: usize) -> String {
        format!("svc-{s:02}")
    }

    pub fn gateway_name(g: usize) -> String {
        format!("gw{g:02}")
    }

    /// A /16 in 10.0.0.0/8 for the first 150 gateways (every scenario up to 7,500 links, so
    /// the moto bench is unchanged), then /24s in 172.16.0.0/12 (`bench --fake` at 100,000 links
    /// has 2,000 gateways).
    pub fn gateway_cidr(g: usize) -> Ipv4Net {
        if g < 150 {
            format!("10.{}.0.0/16", 101 + g).parse().expect("a CIDR")
        } else {
            let k = g - 150;
            assert!(k < 4096, "gateway {g}: out of 172.16.0.0/12");
            format!("172.{}.{}.0/24", 16 + k / 256, k % 256).parse().expect("a CIDR")
        }
    }

    /// A /16 in 10.0.0.0/8 for the first 100 service accounts, then /24s in 100.64.0.0/10 (5,000
    /// service accounts at 100,000 links, 20 links and 40 targets each).
    pub fn service_cidr(s: usize) -> Ipv4Net {
        if s < 100 {
            format!("10.{}.0.0/16", 1 + s).parse().expect("a CIDR")
        } else {
            let k = s - 100;
            assert!(k < 16384, "service account {s}: out of 100.64.0.0/10");
            format!("100.{}.{}.0/24", 64 + k / 256, k % 256).parse().expect("a CIDR")
        }
    }

    /// Service accounts homed in each gateway account.
    fn homed(&self) -> Vec<Vec<usize>> {
        let mut homed = vec![Vec::new(); self.gateway_accounts];
        for s in 0..self.service_accounts {
            homed[s % self.gateway_accounts].push(s);
        }
        homed
    }

    pub fn links(&self) -> Vec<LinkSpec> {
        let mut per_service = vec![0usize; self.service_accounts];
        let homed = self.homed();
        (0..self.links)
            .map(|i| {
                let gateway = i % self.gateways;
                let k = i / self.gateways;
                let homed = &homed[self.gateway_account_of(gateway)];
                let service = homed[k % homed.len()];
                let j = per_service[service];
                per_service[service] += 1;
                let name = format!("l{i:04}");
                let cidr = Self::service_cidr(service);
                let net = cidr.network().octets();
                let targets = (0..TARGETS_PER_LINK)
                    .map(|t| {
                        if cidr.prefix_len() == 16 {
                            format!("{}.{}.{}.{}", net[0], net[1], 10 + j / 100, 10 + (j % 100) * 2 + t)
                        } else {
                            assert!(j < 100, "{j} links in a /24 service VPC");
                            format!("{}.{}.{}.{}", net[0], net[1], net[2], 10 + j * 2 + t)
                        }
                    })
                    .collect();
                let mut routes = vec![(format!("/{}/{name}", Self::service_account_name(service)), "[ANY]")];
                if i % SECOND_ROUTE_EVERY == 0 {
                    routes.push((format!("/internal/{name}"), "[GET, POST]"));
                }
                LinkSpec { index: i, name, gateway, service, port: 10_000 + k as u16, targets, routes }
            })
            .collect()
    }

    /// (gateway, service account) pairs with at least one link: one peering each.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        let mut pairs: Vec<(usize, usize)> = self.links().iter().map(|l| (l.gateway, l.service)).collect();
        pairs.sort();
        pairs.dedup();
        pairs
    }

    /// The Account documents of the scenario.
    pub fn accounts_yaml(&self) -> String {
        let account = |name: &str, id: &str| {
            format!(
                "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: {name}}}\nspec:\n  accountId: \"{id}\"\n  region: {}\n  assumeRole: {{roleArn: \"arn:aws:iam::{id}:role/crosslink\", externalId: bench}}\n",
                crosslink_testkit::REGION
            )
        };
        let accounts: Vec<String> = (0..self.gateway_accounts)
            .map(|a| account(&Self::gateway_account_name(a), &Self::gateway_account_id(a)))
            .chain(
                (0..self.service_accounts)
                    .map(|s| account(&Self::service_account_name(s), &Self::service_account_id(s))),
            )
            .collect();
        accounts.join("---\n")
    }

    /// The desired state: (file name, YAML).
    pub fn yaml(&self, seeded: &Seeded) -> Vec<(String, String)> {
        let accounts = self.accounts_yaml();
        let mut files = vec![("accounts.yaml".to_string(), accounts)];
        let mut by_gateway: Vec<Vec<LinkSpec>> = vec![Vec::new(); self.gateways];
        for l in self.links() {
            by_gateway[l.gateway].push(l);
        }
        for (g, links) in by_gateway.iter().enumerate() {
            let (vpc, subnets, rtb) = &seeded.gateways[g];
            let name = Self::gateway_name(g);
            let mut text = format!(
                "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: {name}}}\nspec:\n  account: {}\n  vpcId: {vpc}\n  subnetIds: [{}]\n  routeTableIds: [{rtb}]\n  loadBalancer: {{name: {name}-nlb}}\n  api: {{name: {name}-api, stage: {STAGE}}}\n",
                Self::gateway_account_name(self.gateway_account_of(g)),
                subnets.join(", ")
            );
            for l in links {
                let (svc_vpc, svc_rtb) = &seeded.services[l.service];
                let targets: Vec<String> = l.targets.iter().map(|ip| format!("{{ip: {ip}, port: 8080}}")).collect();
                let routes: Vec<String> =
                    l.routes.iter().map(|(p, m)| format!("{{path: {p}, methods: {m}}}")).collect();
                let _ = write!(
                    text,
                    "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: {}}}\nspec:\n  gateway: {name}\n  service: {{account: {}, vpcId: {svc_vpc}, routeTableIds: [{svc_rtb}]}}\n  targets: [{}]\n  listenerPort: {}\n  routes: [{}]\n",
                    l.name,
                    Self::service_account_name(l.service),
                    targets.join(", "),
                    l.port,
                    routes.join(", ")
                );
            }
            files.push((format!("{name}.yaml"), text));
        }
        files
    }

    /// API resources a gateway's REST API holds: the root, every route, its `{proxy+}`, and the
    /// parents of routes.
    pub fn api_resources(&self, g: usize) -> usize {
        let mut paths = std::collections::BTreeSet::new();
        for l in self.links().iter().filter(|l| l.gateway == g) {
            for (p, _) in &l.routes {
                let segs: Vec<&str> = p.trim_start_matches('/').split('/').collect();
                for i in 1..=segs.len() {
                    paths.insert(segs[..i].join("/"));
                }
                paths.insert(format!("{}/{{proxy+}}", p.trim_start_matches('/')));
            }
        }
        paths.len() + 1
    }

    /// The most reads a pass with nothing to do should need (issue 7): per account the identity
    /// and the account-wide list calls at their largest page size, per gateway one read per
    /// gateway-scoped collection (listeners, API resources, stages), and one target-health read
    /// per target group.
    pub fn read_bound(&self) -> ReadBound {
        let pages = |items: usize, page: usize| items.div_ceil(page).max(1);
        let accounts = self.gateway_accounts + self.service_accounts;
        // AssumeRole + GetCallerIdentity; DescribeVpcs, DescribeVpcPeeringConnections,
        // DescribeRouteTables (every account holds well under a page of each: moto adds a
        // default VPC with its main route table).
        let per_account = accounts * (2 + 3);
        let mut gateway_side = 0;
        let mut gateway_scoped = 0;
        for a in 0..self.gateway_accounts {
            let gws: Vec<usize> = (0..self.gateways).filter(|g| self.gateway_account_of(*g) == a).collect();
            let links = self.links().iter().filter(|l| gws.contains(&l.gateway)).count();
            // DescribeLoadBalancers, DescribeTargetGroups (400 a page), GetVpcLinks, GetRestApis
            // (500 a page), and the ELBv2 tags of load balancers, listeners and target groups
            // (DescribeTags takes 20 ARNs).
            gateway_side += pages(gws.len(), 400)
                + pages(links, 400)
                + pages(gws.len(), 500)
                + pages(gws.len(), 500)
                + pages(gws.len(), 20)
                + pages(links, 20)
                + pages(links, 20);
            for g in gws {
                let listeners = self.links().iter().filter(|l| l.gateway == g).count();
                // DescribeListeners (400 a page), GetResources (500 a page), GetStages.
                gateway_scoped += pages(listeners, 400) + pages(self.api_resources(g), 500) + 1;
            }
        }
        ReadBound { per_account, gateway_side, gateway_scoped, target_groups: self.links }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReadBound {
    /// STS and EC2 list calls of every account.
    pub per_account: usize,
    /// Account-wide ELBv2 / API Gateway list and tag calls of gateway accounts.
    pub gateway_side: usize,
    /// One read per gateway-scoped collection: listeners, API resources, stages.
    pub gateway_scoped: usize,
    /// One DescribeTargetHealth per target group (one per link).
    pub target_groups: usize,
}

impl ReadBound {
    pub fn total(&self) -> usize {
        self.per_account + self.gateway_side + self.gateway_scoped + self.target_groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_scenario_at_one_thousand_links() {
        let s = Scenario::for_links(1000);
        assert_eq!((s.gateways, s.gateway_accounts, s.service_accounts), (20, 5, 50));
        let links = s.links();
        for g in 0..20 {
            let ports: std::collections::BTreeSet<u16> =
                links.iter().filter(|l| l.gateway == g).map(|l| l.port).collect();
            assert_eq!(ports.len(), 50, "50 distinct listener ports on gateway {g}");
        }
        for l in &links {
            assert_eq!(s.gateway_account_of(l.gateway), l.service % 5, "{l:?}");
            assert!(
                l.targets
                    .iter()
                    .all(|t| Scenario::service_cidr(l.service).contains(&t.parse::<std::net::Ipv4Addr>().unwrap()))
            );
        }
        let targets: std::collections::BTreeSet<&String> = links.iter().flat_map(|l| &l.targets).collect();
        assert_eq!(targets.len(), 2000, "every target distinct");
        assert_eq!(s.pairs().len(), 200);
        assert!(s.api_resources(0) < 300, "{} resources", s.api_resources(0));
        let b = s.read_bound();
        assert_eq!(b.target_groups, 1000);
        assert_eq!(b.per_account, 55 * 5);
    }

    #[test]
    fn one_hundred_thousand_links_get_disjoint_vpcs_and_targets_inside_them() {
        let s = Scenario::for_links(100_000);
        assert_eq!((s.gateways, s.gateway_accounts, s.service_accounts), (2000, 500, 5000));
        let mut nets: Vec<Ipv4Net> = (0..s.gateways)
            .map(Scenario::gateway_cidr)
            .chain((0..s.service_accounts).map(Scenario::service_cidr))
            .collect();
        nets.sort();
        for w in nets.windows(2) {
            assert!(!w[0].contains(&w[1].network()), "{} overlaps {}", w[0], w[1]);
        }
        let links = s.links();
        assert_eq!(links.len(), 100_000);
        for l in links.iter().step_by(97) {
            let cidr = Scenario::service_cidr(l.service);
            assert!(l.targets.iter().all(|t| cidr.contains(&t.parse::<std::net::Ipv4Addr>().unwrap())), "{l:?}");
        }
    }

    #[test]
    fn the_yaml_is_valid_desired_state() {
        let s = Scenario::for_links(100);
        let seeded = Seeded {
            gateways: (0..s.gateways)
                .map(|g| {
                    (
                        format!("vpc-0000000000000{g:04}"),
                        vec!["subnet-00000001".into(), "subnet-00000002".into()],
                        format!("rtb-0000000000000{g:04}"),
                    )
                })
                .collect(),
            services: (0..s.service_accounts)
                .map(|v| (format!("vpc-1111111111111{v:04}"), format!("rtb-1111111111111{v:04}")))
                .collect(),
        };
        let text = s.yaml(&seeded).into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("---\n");
        let d =
            crosslink_desired::load_str(std::path::Path::new("bench.yaml"), &text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.accounts.len(), d.gateways.len(), d.links.len()), (1 + 5, 2, 100));
    }
}
