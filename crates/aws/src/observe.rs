//! Reading one account into `AccountState`: batched per account (never per link), every page
//! followed, independent reads run concurrently.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use aws_sdk_ec2::types::{RouteState, VpcCidrBlockStateCode};
use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{
    AccountState, ApiMethod, ApiResource, HealthCheckSettings, Integration, Listener, LoadBalancer, Peering,
    PeeringStatus, RegisteredTarget, RestApi, Route, RouteTable, Stage, Tags, TargetGroup, Vpc, VpcLink,
};
use crosslink_plan::tags::is_managed;
use futures::{StreamExt, TryStreamExt};
use ipnet::Ipv4Net;

use crate::cloud::{Clients, Ctx};
use crate::kinds;

/// Largest page sizes each API accepts.
const EC2_PAGE: i32 = 1000;
const EC2_ROUTE_TABLE_PAGE: i32 = 100;
const ELB_PAGE: i32 = 400;
const APIGW_PAGE: i32 = 500;
/// DescribeTags takes at most 20 ARNs.
const ELB_TAG_BATCH: usize = 20;
/// Requests in flight per account for per-item reads: ELBv2 reads refill at 10/s; API Gateway
/// allows 10 requests/s for all operations together and GetResources 5 per 2 s.
const ELB_CONCURRENCY: usize = 4;
const APIGW_CONCURRENCY: usize = 2;

pub(crate) async fn observe(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<AccountState, CloudError> {
    let network = futures::future::try_join3(vpcs(ctx, c), peerings(ctx, c), route_tables(ctx, c));
    let gateway = async { if scope.gateway_side { gateway_side(ctx, c, scope).await.map(Some) } else { Ok(None) } };
    let ((vpcs, peerings, route_tables), gateway) = futures::future::try_join(network, gateway).await?;
    let mut state = AccountState {
        account_id: c.session.account_id.clone(),
        region: c.session.region.clone(),
        vpcs,
        peerings,
        route_tables,
        ..AccountState::default()
    };
    if let Some(g) = gateway {
        state.load_balancers = g.load_balancers;
        state.listeners = g.listeners;
        state.target_groups = g.target_groups;
        state.vpc_links = g.vpc_links;
        state.rest_apis = g.rest_apis;
    }
    Ok(state)
}

fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
}

async fn vpcs(ctx: &Ctx<'_>, c: &Clients) -> Result<BTreeMap<String, Vpc>, CloudError> {
    let stream = c.ec2.describe_vpcs().max_results(EC2_PAGE).into_paginator().send();
    let pages = ctx.pages(&kinds::account::DESCRIBE_VPCS, stream, |p| p.next_token()).await?;
    let mut out = BTreeMap::new();
    for v in pages.iter().flat_map(|p| p.vpcs()) {
        let Some(id) = v.vpc_id() else { continue };
        let primary = v.cidr_block().and_then(|s| s.parse::<Ipv4Net>().ok());
        let mut cidrs: Vec<Ipv4Net> = primary.into_iter().collect();
        for a in v.cidr_block_association_set() {
            let associated =
                a.cidr_block_state().and_then(|s| s.state()).is_some_and(|s| *s == VpcCidrBlockStateCode::Associated);
            if let Some(net) = a.cidr_block().and_then(|s| s.parse::<Ipv4Net>().ok())
                && associated
                && !cidrs.contains(&net)
            {
                cidrs.push(net);
            }
        }
        out.insert(id.to_string(), Vpc { id: id.to_string(), cidrs });
    }
    Ok(out)
}

/// All peering connections the account sees, as requester or accepter (moto ignores filters, and
/// the planner wants dead ones too, to know they are dead).
async fn peerings(ctx: &Ctx<'_>, c: &Clients) -> Result<Vec<Peering>, CloudError> {
    let stream = c.ec2.describe_vpc_peering_connections().max_results(EC2_PAGE).into_paginator().send();
    let pages = ctx.pages(&kinds::peering::DESCRIBE, stream, |p| p.next_token()).await?;
    let mut out = Vec::new();
    for p in pages.iter().flat_map(|p| p.vpc_peering_connections()) {
        let Some(id) = p.vpc_peering_connection_id() else { continue };
        let requester = p.requester_vpc_info();
        let accepter = p.accepter_vpc_info();
        out.push(Peering {
            id: id.to_string(),
            requester_vpc: requester.and_then(|i| i.vpc_id()).unwrap_or_default().to_string(),
            requester_account: requester.and_then(|i| i.owner_id()).unwrap_or_default().to_string(),
            accepter_vpc: accepter.and_then(|i| i.vpc_id()).unwrap_or_default().to_string(),
            accepter_account: accepter.and_then(|i| i.owner_id()).unwrap_or_default().to_string(),
            status: p
                .status()
                .and_then(|s| s.code())
                .map_or(PeeringStatus::Other, |s| PeeringStatus::parse(s.as_str())),
            tags: ec2_tags(p.tags()),
            accepter_dns_resolution: accepter
                .and_then(|i| i.peering_options())
                .and_then(|o| o.allow_dns_resolution_from_remote_vpc())
                .unwrap_or(false),
        });
    }
    Ok(out)
}

async fn route_tables(ctx: &Ctx<'_>, c: &Clients) -> Result<BTreeMap<String, RouteTable>, CloudError> {
    let stream = c.ec2.describe_route_tables().max_results(EC2_ROUTE_TABLE_PAGE).into_paginator().send();
    let pages = ctx.pages(&kinds::route::DESCRIBE_ROUTE_TABLES, stream, |p| p.next_token()).await?;
    let mut out = BTreeMap::new();
    for t in pages.iter().flat_map(|p| p.route_tables()) {
        let Some(id) = t.route_table_id() else { continue };
        let routes = t
            .routes()
            .iter()
            .filter_map(|r| {
                // IPv6 and prefix-list routes have no IPv4 destination: crosslink never owns them.
                let destination = r.destination_cidr_block()?.parse::<Ipv4Net>().ok()?;
                let other_target = [
                    r.gateway_id(),
                    r.nat_gateway_id(),
                    r.network_interface_id(),
                    r.transit_gateway_id(),
                    r.instance_id(),
                    r.local_gateway_id(),
                    r.carrier_gateway_id(),
                    r.egress_only_internet_gateway_id(),
                    r.core_network_arn(),
                ]
                .into_iter()
                .flatten()
                .next()
                .map(str::to_string);
                Some(Route {
                    destination,
                    peering_id: r.vpc_peering_connection_id().map(str::to_string),
                    other_target,
                    blackhole: r.state() == Some(&RouteState::Blackhole),
                })
            })
            .collect();
        out.insert(
            id.to_string(),
            RouteTable { id: id.to_string(), vpc_id: t.vpc_id().unwrap_or_default().to_string(), routes },
        );
    }
    Ok(out)
}

struct GatewaySide {
    load_balancers: Vec<LoadBalancer>,
    listeners: Vec<Listener>,
    target_groups: Vec<TargetGroup>,
    vpc_links: Vec<VpcLink>,
    rest_apis: Vec<RestApi>,
}

async fn gateway_side(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<GatewaySide, CloudError> {
    let ((load_balancers, listeners), target_groups, vpc_links, rest_apis) = futures::future::try_join4(
        load_balancers(ctx, c, scope),
        target_groups(ctx, c, scope),
        vpc_links(ctx, c),
        rest_apis(ctx, c, scope),
    )
    .await?;
    Ok(GatewaySide { load_balancers, listeners, target_groups, vpc_links, rest_apis })
}

/// Tags of ELBv2 resources by ARN, 20 ARNs per DescribeTags.
async fn elb_tags(ctx: &Ctx<'_>, c: &Clients, arns: Vec<String>) -> Result<HashMap<String, Tags>, CloudError> {
    let batches: Vec<Vec<String>> = arns.chunks(ELB_TAG_BATCH).map(<[String]>::to_vec).collect();
    let outputs: Vec<_> = futures::stream::iter(batches)
        .map(|batch| {
            ctx.call(
                &kinds::load_balancer::DESCRIBE_TAGS,
                c.elbv2.describe_tags().set_resource_arns(Some(batch)).send(),
            )
        })
        .buffer_unordered(ELB_CONCURRENCY)
        .try_collect()
        .await?;
    let mut out = HashMap::new();
    for d in outputs.iter().flat_map(|o| o.tag_descriptions()) {
        let Some(arn) = d.resource_arn() else { continue };
        let tags =
            d.tags().iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())));
        out.insert(arn.to_string(), tags.collect());
    }
    Ok(out)
}

async fn load_balancers(
    ctx: &Ctx<'_>,
    c: &Clients,
    scope: &ObserveScope,
) -> Result<(Vec<LoadBalancer>, Vec<Listener>), CloudError> {
    let stream = c.elbv2.describe_load_balancers().page_size(ELB_PAGE).into_paginator().send();
    let pages = ctx.pages(&kinds::load_balancer::DESCRIBE, stream, |p| p.next_marker()).await?;
    let raw: Vec<_> =
        pages.iter().flat_map(|p| p.load_balancers()).filter(|l| l.load_balancer_arn().is_some()).collect();
    let mut tags =
        elb_tags(ctx, c, raw.iter().filter_map(|l| l.load_balancer_arn()).map(str::to_string).collect()).await?;
    let load_balancers: Vec<LoadBalancer> = raw
        .iter()
        .map(|l| {
            let arn = l.load_balancer_arn().unwrap_or_default().to_string();
            LoadBalancer {
                name: l.load_balancer_name().unwrap_or_default().to_string(),
                dns_name: l.dns_name().unwrap_or_default().to_string(),
                vpc_id: l.vpc_id().unwrap_or_default().to_string(),
                kind: l.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                internal: l.scheme().is_some_and(|s| s.as_str() == "internal"),
                state: l.state().and_then(|s| s.code()).map(|s| s.as_str().to_string()).unwrap_or_default(),
                subnet_ids: l.availability_zones().iter().filter_map(|z| z.subnet_id()).map(str::to_string).collect(),
                tags: tags.remove(&arn).unwrap_or_default(),
                arn,
            }
        })
        .collect();

    let wanted: Vec<String> = load_balancers
        .iter()
        .filter(|l| {
            is_managed(&l.tags, &scope.instance)
                || scope.load_balancer_names.contains(&l.name)
                || scope.load_balancer_arns.contains(&l.arn)
        })
        .map(|l| l.arn.clone())
        .collect();
    let per_lb: Vec<Vec<_>> = futures::stream::iter(wanted)
        .map(|arn| async move {
            let stream =
                c.elbv2.describe_listeners().load_balancer_arn(arn).page_size(ELB_PAGE).into_paginator().send();
            ctx.pages(&kinds::listener::DESCRIBE, stream, |p| p.next_marker()).await
        })
        .buffered(ELB_CONCURRENCY)
        .try_collect()
        .await?;
    let raw: Vec<_> =
        per_lb.iter().flatten().flat_map(|p| p.listeners()).filter(|l| l.listener_arn().is_some()).collect();
    let mut tags = elb_tags(ctx, c, raw.iter().filter_map(|l| l.listener_arn()).map(str::to_string).collect()).await?;
    let listeners = raw
        .iter()
        .map(|l| {
            let arn = l.listener_arn().unwrap_or_default().to_string();
            Listener {
                load_balancer_arn: l.load_balancer_arn().unwrap_or_default().to_string(),
                port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or_default(),
                protocol: l.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                target_group_arn: forward_target(l.default_actions()),
                tags: tags.remove(&arn).unwrap_or_default(),
                arn,
            }
        })
        .collect();
    Ok((load_balancers, listeners))
}

/// The target group a default action forwards to: its own ARN, or the only one of its forward
/// config (what the console writes).
fn forward_target(actions: &[aws_sdk_elasticloadbalancingv2::types::Action]) -> Option<String> {
    let forward = actions.iter().find(|a| a.r#type().is_some_and(|t| t.as_str() == "forward"))?;
    if let Some(arn) = forward.target_group_arn() {
        return Some(arn.to_string());
    }
    match forward.forward_config()?.target_groups() {
        [only] => only.target_group_arn().map(str::to_string),
        _ => None,
    }
}

async fn target_groups(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<Vec<TargetGroup>, CloudError> {
    let stream = c.elbv2.describe_target_groups().page_size(ELB_PAGE).into_paginator().send();
    let pages = ctx.pages(&kinds::target_group::DESCRIBE, stream, |p| p.next_marker()).await?;
    let raw: Vec<_> = pages.iter().flat_map(|p| p.target_groups()).filter(|t| t.target_group_arn().is_some()).collect();
    let mut tags =
        elb_tags(ctx, c, raw.iter().filter_map(|t| t.target_group_arn()).map(str::to_string).collect()).await?;
    let mut groups: Vec<TargetGroup> = raw
        .iter()
        .map(|t| {
            let arn = t.target_group_arn().unwrap_or_default().to_string();
            let u16_of = |v: Option<i32>| v.and_then(|v| u16::try_from(v).ok()).unwrap_or_default();
            let u8_of = |v: Option<i32>| v.and_then(|v| u8::try_from(v).ok()).unwrap_or_default();
            TargetGroup {
                name: t.target_group_name().unwrap_or_default().to_string(),
                vpc_id: t.vpc_id().unwrap_or_default().to_string(),
                protocol: t.protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                port: u16_of(t.port()),
                target_type: t.target_type().map(|p| p.as_str().to_string()).unwrap_or_default(),
                health_check: HealthCheckSettings {
                    protocol: t.health_check_protocol().map(|p| p.as_str().to_string()).unwrap_or_default(),
                    path: t.health_check_path().map(str::to_string),
                    port: t.health_check_port().unwrap_or("traffic-port").to_string(),
                    interval_seconds: u16_of(t.health_check_interval_seconds()),
                    healthy_threshold: u8_of(t.healthy_threshold_count()),
                    unhealthy_threshold: u8_of(t.unhealthy_threshold_count()),
                },
                tags: tags.remove(&arn).unwrap_or_default(),
                targets: Vec::new(),
                arn,
            }
        })
        .collect();

    // Targets only of crosslink's own groups: one DescribeTargetHealth per group.
    // Those the engine already knows (a targeted read) are left out.
    let own: Vec<usize> = (0..groups.len())
        .filter(|&i| is_managed(&groups[i].tags, &scope.instance) && !scope.known_targets.contains(&groups[i].arn))
        .collect();
    let healths: Vec<(usize, Vec<RegisteredTarget>)> = futures::stream::iter(own)
        .map(|i| {
            let arn = groups[i].arn.clone();
            async move {
                let out = ctx
                    .call(
                        &kinds::targets::DESCRIBE_HEALTH,
                        c.elbv2.describe_target_health().target_group_arn(arn).send(),
                    )
                    .await?;
                let mut targets: Vec<RegisteredTarget> = out
                    .target_health_descriptions()
                    .iter()
                    .filter_map(|d| {
                        let t = d.target()?;
                        Some(RegisteredTarget {
                            ip: t.id()?.parse::<Ipv4Addr>().ok()?,
                            port: t.port().and_then(|p| u16::try_from(p).ok()).unwrap_or_default(),
                            availability_zone: t.availability_zone().map(str::to_string),
                            health: d
                                .target_health()
                                .and_then(|h| h.state())
                                .map(|s| s.as_str().to_string())
                                .unwrap_or_default(),
                        })
                    })
                    .collect();
                targets.sort();
                Ok::<_, CloudError>((i, targets))
            }
        })
        .buffer_unordered(ELB_CONCURRENCY)
        .try_collect()
        .await?;
    for (i, targets) in healths {
        groups[i].targets = targets;
    }
    Ok(groups)
}

fn str_map(m: Option<&HashMap<String, String>>) -> Tags {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

async fn vpc_links(ctx: &Ctx<'_>, c: &Clients) -> Result<Vec<VpcLink>, CloudError> {
    let stream = c.apigateway.get_vpc_links().into_paginator().page_size(APIGW_PAGE).send();
    let pages = ctx.pages(&kinds::vpc_link::GET, stream, |p| p.position()).await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|l| {
            Some(VpcLink {
                id: l.id()?.to_string(),
                name: l.name().unwrap_or_default().to_string(),
                target_arns: l.target_arns().to_vec(),
                status: l.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
                status_message: l.status_message().map(str::to_string),
                tags: str_map(l.tags()),
            })
        })
        .collect())
}

async fn rest_apis(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<Vec<RestApi>, CloudError> {
    let stream = c.apigateway.get_rest_apis().into_paginator().page_size(APIGW_PAGE).send();
    let pages = ctx.pages(&kinds::rest_api::GET, stream, |p| p.position()).await?;
    let mut apis: Vec<RestApi> = pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|a| {
            Some(RestApi {
                id: a.id()?.to_string(),
                name: a.name().unwrap_or_default().to_string(),
                tags: str_map(a.tags()),
                resources: Vec::new(),
                stages: Vec::new(),
            })
        })
        .collect();

    let wanted: Vec<usize> = (0..apis.len())
        .filter(|&i| {
            let a = &apis[i];
            is_managed(&a.tags, &scope.instance)
                || scope.rest_api_ids.contains(&a.id)
                || scope.rest_api_names.contains(&a.name)
        })
        .collect();
    let details: Vec<(usize, Vec<ApiResource>, Vec<Stage>)> = futures::stream::iter(wanted)
        .map(|i| {
            let id = apis[i].id.clone();
            async move {
                let (resources, stages) =
                    futures::future::try_join(api_resources(ctx, c, &id), api_stages(ctx, c, &id)).await?;
                Ok::<_, CloudError>((i, resources, stages))
            }
        })
        .buffer_unordered(APIGW_CONCURRENCY)
        .try_collect()
        .await?;
    for (i, resources, stages) in details {
        apis[i].resources = resources;
        apis[i].stages = stages;
    }
    Ok(apis)
}

/// Resources with their methods and integrations embedded: one paginated GetResources per API.
async fn api_resources(ctx: &Ctx<'_>, c: &Clients, rest_api_id: &str) -> Result<Vec<ApiResource>, CloudError> {
    let stream = c
        .apigateway
        .get_resources()
        .rest_api_id(rest_api_id)
        .embed("methods")
        .into_paginator()
        .page_size(APIGW_PAGE)
        .send();
    let pages = ctx.pages(&kinds::api_resource::GET, stream, |p| p.position()).await?;
    let mut out: Vec<ApiResource> = pages
        .iter()
        .flat_map(|p| p.items())
        .filter_map(|r| {
            let methods = r
                .resource_methods()
                .map(|m| {
                    m.iter()
                        .map(|(verb, m)| {
                            let integration = m.method_integration().map(|i| Integration {
                                kind: i.r#type().map(|t| t.as_str().to_string()).unwrap_or_default(),
                                http_method: i.http_method().map(str::to_string),
                                uri: i.uri().map(str::to_string),
                                connection_type: i.connection_type().map(|t| t.as_str().to_string()),
                                connection_id: i.connection_id().map(str::to_string),
                            });
                            let method = ApiMethod {
                                authorization_type: m.authorization_type().unwrap_or("NONE").to_string(),
                                integration,
                            };
                            (verb.clone(), method)
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(ApiResource {
                id: r.id()?.to_string(),
                parent_id: r.parent_id().map(str::to_string),
                path: r.path().unwrap_or_default().to_string(),
                methods,
            })
        })
        .collect();
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

async fn api_stages(ctx: &Ctx<'_>, c: &Clients, rest_api_id: &str) -> Result<Vec<Stage>, CloudError> {
    let out = ctx.call(&kinds::stage::GET, c.apigateway.get_stages().rest_api_id(rest_api_id).send()).await?;
    let mut stages: Vec<Stage> = out
        .item()
        .iter()
        .filter_map(|s| {
            Some(Stage {
                name: s.stage_name()?.to_string(),
                deployment_id: s.deployment_id().map(str::to_string),
                tags: str_map(s.tags()),
            })
        })
        .collect();
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(stages)
}
