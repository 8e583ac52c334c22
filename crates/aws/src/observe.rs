//! Reading one account into `AccountState`: batched per account (never per link), every page
//! followed, independent reads run concurrently. Each kind's reader lives in its module
//! (`crate::kinds`); this is the order they run in and what they share (page sizes, tag batches).

use std::collections::HashMap;

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{AccountState, Listener, LoadBalancer, RestApi, Tags, TargetGroup, VpcLink};
use futures::{StreamExt, TryStreamExt};

use crate::cloud::{Clients, Ctx};
use crate::kinds;

/// Largest page sizes each API accepts.
pub(crate) const EC2_PAGE: i32 = 1000;
pub(crate) const EC2_ROUTE_TABLE_PAGE: i32 = 100;
pub(crate) const ELB_PAGE: i32 = 400;
pub(crate) const APIGW_PAGE: i32 = 500;
/// DescribeTags takes at most 20 ARNs.
pub(crate) const ELB_TAG_BATCH: usize = 20;
/// Requests in flight per account for per-item reads: ELBv2 reads refill at 10/s; API Gateway
/// allows 10 requests/s for all operations together and GetResources 5 per 2 s.
pub(crate) const ELB_CONCURRENCY: usize = 4;
pub(crate) const APIGW_CONCURRENCY: usize = 2;

pub(crate) async fn observe(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<AccountState, CloudError> {
    let network = futures::future::try_join3(
        kinds::account::vpcs(ctx, c),
        kinds::peering::peerings(ctx, c),
        kinds::route::route_tables(ctx, c),
    );
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

pub(crate) fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
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
        kinds::load_balancer::load_balancers(ctx, c, scope),
        kinds::target_group::target_groups(ctx, c, scope),
        kinds::vpc_link::vpc_links(ctx, c),
        kinds::rest_api::rest_apis(ctx, c, scope),
    )
    .await?;
    Ok(GatewaySide { load_balancers, listeners, target_groups, vpc_links, rest_apis })
}

/// Tags of ELBv2 resources by ARN, 20 ARNs per DescribeTags.
pub(crate) async fn elb_tags(
    ctx: &Ctx<'_>,
    c: &Clients,
    arns: Vec<String>,
) -> Result<HashMap<String, Tags>, CloudError> {
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

pub(crate) fn str_map(m: Option<&HashMap<String, String>>) -> Tags {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}
