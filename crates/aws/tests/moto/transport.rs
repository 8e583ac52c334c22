//! The privateLink transport with the real AWS SDK against moto: every step moto answers
//! (endpoint services and their permissions, a cross-account interface endpoint, security
//! groups, the service-side NLB), checked through the SDK; drift repaired; removal. moto makes an
//! endpoint `available` at once and answers the connection calls with 500, so the acceptance is
//! tested on the in-memory AWS (`crates/controller/tests/transport.rs`) and its wire format
//! against a recorded AWS response (`adapter::accept_vpc_endpoint_connections_*`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crosslink_aws::{AwsCloud, Connector, SeededVpc, seed_network};
use crosslink_controller::{ApplyOptions, Engine, EngineOptions};
use crosslink_desired::DesiredState;
use crosslink_testkit::Moto;

const GW: &str = "111111111111";
const SVC: &str = "222222222222";

struct Fixture {
    _moto: Moto,
    cloud: Arc<AwsCloud>,
    gw: SeededVpc,
    svc: SeededVpc,
    /// A second VPC of the service account, with its own range: reached over peering.
    peered: SeededVpc,
}

fn accounts() -> String {
    let acct = |name: &str, id: &str| {
        format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Account\nmetadata: {{name: {name}}}\nspec:\n  accountId: \"{id}\"\n  region: eu-central-1\n  assumeRole: {{roleArn: \"arn:aws:iam::{id}:role/crosslink\", externalId: test-ext}}\n---\n"
        )
    };
    acct("shared", GW) + &acct("svc", SVC)
}

fn desired(text: &str) -> DesiredState {
    crosslink_desired::load_str(Path::new("moto.yaml"), text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

impl Fixture {
    /// The service VPC has the gateway VPC's own range: it cannot be peered.
    async fn new() -> Fixture {
        let moto = Moto::start();
        let cloud = AwsCloud::new(Connector::from_config(super::base_config(&moto).await))
            .with_rate_limits(crosslink_aws::RateLimits::off());
        let d = desired(&accounts());
        let s_gw = cloud.session(d.account("shared").unwrap()).await.unwrap();
        let s_svc = cloud.session(d.account("svc").unwrap()).await.unwrap();
        let gw = seed_network(&s_gw, "gateway", "10.1.0.0/16".parse().unwrap(), 2).await.unwrap();
        let svc = seed_network(&s_svc, "fraud", "10.1.0.0/16".parse().unwrap(), 2).await.unwrap();
        let peered = seed_network(&s_svc, "ledger", "10.30.0.0/16".parse().unwrap(), 1).await.unwrap();
        Fixture { _moto: moto, cloud: Arc::new(cloud), gw, svc, peered }
    }

    fn yaml(&self, with_link: bool) -> String {
        self.yaml_with(with_link, false)
    }

    /// With the privateLink link, and with a peered link of the same service account.
    fn yaml_with(&self, with_link: bool, with_peered: bool) -> String {
        let peered = format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: ledger}}\nspec:\n  gateway: edge\n  service: {{account: svc, vpcId: {}, routeTableIds: [{}]}}\n  targets: [{{ip: 10.30.1.10, port: 8080}}]\n  listenerPort: 9003\n  routes: [{{path: /accounts}}]\n",
            self.peered.vpc_id, self.peered.route_table_id
        );
        let gateway = format!(
            "apiVersion: crosslink.dev/v1alpha1\nkind: Gateway\nmetadata: {{name: edge}}\nspec:\n  account: shared\n  vpcId: {}\n  subnetIds: [{}]\n  routeTableIds: [{}]\n  loadBalancer: {{name: edge-nlb}}\n  api: {{name: open-banking, stage: v1}}\n",
            self.gw.vpc_id,
            self.gw.subnet_ids.join(", "),
            self.gw.route_table_id
        );
        let link = format!(
            "---\napiVersion: crosslink.dev/v1alpha1\nkind: Link\nmetadata: {{name: fraud}}\nspec:\n  gateway: edge\n  service: {{account: svc, vpcId: {}}}\n  targets: [{{ip: 10.1.7.20, port: 8080}}]\n  listenerPort: 9005\n  routes: [{{path: /fraud-checks}}]\n  transport:\n    privateLink:\n      loadBalancer: {{name: fraud-svc}}\n      subnetIds: [{}]\n",
            self.svc.vpc_id,
            self.svc.subnet_ids.join(", ")
        );
        accounts() + &gateway + if with_link { &link } else { "" } + if with_peered { &peered } else { "" }
    }

    fn engine(&self) -> Engine<AwsCloud> {
        Engine::new(self.cloud.clone(), EngineOptions::default())
    }

    async fn converge(&self, d: &DesiredState) {
        let opts = ApplyOptions {
            timeout: Duration::from_secs(60),
            min_wait: Duration::from_millis(100),
            max_wait: Duration::from_secs(1),
            max_rounds: 30,
            allow_weakening: false,
            allow_replacement: false,
        };
        let r = self.engine().apply(d, &opts).await;
        assert!(r.converged, "did not converge: failed {:?}\nremaining {:#?}", r.failed, r.remaining);
        let (_, plan) = self.engine().plan(d).await;
        assert!(plan.in_sync(), "re-plan not in sync: {:#?}", plan);
    }

    async fn ec2(&self, d: &DesiredState, name: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.cloud.session(d.account(name).unwrap()).await.unwrap().config)
    }

    async fn elb(&self, d: &DesiredState, name: &str) -> aws_sdk_elasticloadbalancingv2::Client {
        aws_sdk_elasticloadbalancingv2::Client::new(&self.cloud.session(d.account(name).unwrap()).await.unwrap().config)
    }
}

#[tokio::test]
async fn private_link_converges_over_overlapping_cidrs_is_repaired_and_removed_checked_through_the_sdk() {
    let f = Fixture::new().await;
    let d = desired(&f.yaml(true));
    f.converge(&d).await;
    let (gw_ec2, svc_ec2) = (f.ec2(&d, "shared").await, f.ec2(&d, "svc").await);
    let (gw_elb, svc_elb) = (f.elb(&d, "shared").await, f.elb(&d, "svc").await);

    // No peering: the VPCs overlap and nothing routes between them.
    let peerings = gw_ec2.describe_vpc_peering_connections().send().await.unwrap();
    assert!(peerings.vpc_peering_connections().is_empty());

    // The service side: an internal NLB in the service VPC, its TCP listener on the link's port
    // forwarding to a target group holding the link's target.
    let lbs = svc_elb.describe_load_balancers().names("fraud-svc").send().await.unwrap();
    let nlb = &lbs.load_balancers()[0];
    assert_eq!(nlb.vpc_id(), Some(f.svc.vpc_id.as_str()));
    let nlb_arn = nlb.load_balancer_arn().unwrap().to_string();
    let listeners = svc_elb.describe_listeners().load_balancer_arn(&nlb_arn).send().await.unwrap();
    let listener = &listeners.listeners()[0];
    assert_eq!(listener.port(), Some(9005));
    let svc_tg = listener.default_actions()[0].target_group_arn().unwrap().to_string();
    let health = svc_elb.describe_target_health().target_group_arn(&svc_tg).send().await.unwrap();
    let ips: Vec<&str> = health.target_health_descriptions().iter().filter_map(|t| t.target()?.id()).collect();
    assert_eq!(ips, ["10.1.7.20"]);

    // The endpoint service on that NLB: acceptance required, the gateway account its only
    // allowed principal.
    let services = svc_ec2.describe_vpc_endpoint_service_configurations().send().await.unwrap();
    let svc = &services.service_configurations()[0];
    assert_eq!(svc.network_load_balancer_arns(), std::slice::from_ref(&nlb_arn));
    assert_eq!(svc.acceptance_required(), Some(true));
    let service_id = svc.service_id().unwrap().to_string();
    let perms = svc_ec2.describe_vpc_endpoint_service_permissions().service_id(&service_id).send().await.unwrap();
    let principals: Vec<&str> = perms.allowed_principals().iter().filter_map(|p| p.principal()).collect();
    assert_eq!(principals, [format!("arn:aws:iam::{GW}:root")]);

    // The gateway side: an interface endpoint to that service in the gateway subnets, with a
    // security group letting the gateway VPC in on the port; the gateway target group targets
    // its network interfaces.
    let endpoints = gw_ec2.describe_vpc_endpoints().send().await.unwrap();
    let e = endpoints.vpc_endpoints().iter().find(|e| e.state().is_some_and(|s| s.as_str() == "available")).unwrap();
    assert_eq!(e.service_name(), svc.service_name());
    assert_eq!(e.vpc_id(), Some(f.gw.vpc_id.as_str()));
    let sg_id = e.groups()[0].group_id().unwrap().to_string();
    let sgs = gw_ec2.describe_security_groups().group_ids(&sg_id).send().await.unwrap();
    let rules = sgs.security_groups()[0].ip_permissions();
    assert_eq!(rules.len(), 1);
    assert_eq!((rules[0].from_port(), rules[0].to_port()), (Some(9005), Some(9005)));
    assert_eq!(rules[0].ip_ranges()[0].cidr_ip(), Some("10.1.0.0/16"));
    let enis = gw_ec2
        .describe_network_interfaces()
        .set_network_interface_ids(Some(e.network_interface_ids().to_vec()))
        .send()
        .await
        .unwrap();
    let mut eni_ips: Vec<String> =
        enis.network_interfaces().iter().filter_map(|n| n.private_ip_address()).map(str::to_string).collect();
    eni_ips.sort();
    let gw_lbs = gw_elb.describe_load_balancers().names("edge-nlb").send().await.unwrap();
    let gw_listeners = gw_elb
        .describe_listeners()
        .load_balancer_arn(gw_lbs.load_balancers()[0].load_balancer_arn().unwrap())
        .send()
        .await
        .unwrap();
    let gw_tg = gw_listeners.listeners().iter().find(|l| l.port() == Some(9005)).unwrap().default_actions()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    let health = gw_elb.describe_target_health().target_group_arn(&gw_tg).send().await.unwrap();
    let mut targets: Vec<String> =
        health.target_health_descriptions().iter().filter_map(|t| t.target()?.id()).map(str::to_string).collect();
    targets.sort();
    assert_eq!(targets, eni_ips);
    assert_eq!(targets.len(), 2);

    // Drift: another account allowed in, acceptance switched off, and the security group
    // opened to the world.
    svc_ec2
        .modify_vpc_endpoint_service_configuration()
        .service_id(&service_id)
        .acceptance_required(false)
        .send()
        .await
        .unwrap();
    svc_ec2
        .modify_vpc_endpoint_service_permissions()
        .service_id(&service_id)
        .add_allowed_principals("arn:aws:iam::999999999999:root")
        .send()
        .await
        .unwrap();
    gw_ec2
        .authorize_security_group_ingress()
        .group_id(&sg_id)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(0)
                .to_port(65535)
                .ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    f.converge(&d).await;
    let perms = svc_ec2.describe_vpc_endpoint_service_permissions().service_id(&service_id).send().await.unwrap();
    let principals: Vec<&str> = perms.allowed_principals().iter().filter_map(|p| p.principal()).collect();
    assert_eq!(principals, [format!("arn:aws:iam::{GW}:root")]);
    let sgs = gw_ec2.describe_security_groups().group_ids(&sg_id).send().await.unwrap();
    assert_eq!(sgs.security_groups()[0].ip_permissions().len(), 1);
    let services = svc_ec2.describe_vpc_endpoint_service_configurations().send().await.unwrap();
    assert_eq!(services.service_configurations()[0].acceptance_required(), Some(true));

    // Removed while the service account keeps a peered link (so no gateway and no privateLink
    // link puts it in scope for ELBv2 reads any more): everything the link made goes, in both
    // accounts; its endpoint service, read everywhere, has the engine read the rest.
    f.converge(&desired(&f.yaml_with(true, true))).await;
    f.converge(&desired(&f.yaml_with(false, true))).await;
    let services = svc_ec2.describe_vpc_endpoint_service_configurations().send().await.unwrap();
    assert!(
        services.service_configurations().iter().all(|s| s.service_state().is_some_and(|x| x.as_str() == "Deleted")),
        "{services:?}"
    );
    let endpoints = gw_ec2.describe_vpc_endpoints().send().await.unwrap();
    assert!(
        endpoints.vpc_endpoints().iter().all(|e| e.state().is_some_and(|s| s.as_str() == "deleted")),
        "{endpoints:?}"
    );
    let lbs = svc_elb.describe_load_balancers().send().await.unwrap();
    assert!(lbs.load_balancers().is_empty());
    let tgs = svc_elb.describe_target_groups().send().await.unwrap();
    assert!(tgs.target_groups().is_empty());
    let sgs = gw_ec2.describe_security_groups().group_ids(&sg_id).send().await;
    assert!(sgs.is_err() || sgs.unwrap().security_groups().is_empty());
}
