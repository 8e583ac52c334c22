//! Reading one account into `AccountState`: batched per account (never per link), every page
//! followed, independent reads run concurrently. Each kind's reader lives in its module
//! (`crate::kinds`) with its `read`; this runs them all and holds what they share (page sizes, tag
//! batches).

use std::collections::HashMap;

use crosslink_cloud::{CloudError, ObserveScope};
use crosslink_plan::observed::{AccountState, Tags};
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

/// What one kind's reader found, to be stored in the account's state.
pub(crate) type Found = Box<dyn FnOnce(&mut AccountState) + Send>;

/// A reader that found nothing to store (its side of the account is not read).
pub(crate) fn nothing() -> Found {
    Box::new(|_| {})
}

/// The body of a kind's `read`: when `wanted`, what `read` finds, stored by `put`; otherwise no
/// call is made (`read` is not polled) and nothing is stored.
pub(crate) async fn store<T: Send + 'static>(
    wanted: bool,
    read: impl Future<Output = Result<T, CloudError>>,
    put: fn(&mut AccountState, T),
) -> Result<Found, CloudError> {
    if !wanted {
        return Ok(nothing());
    }
    let found = read.await?;
    Ok(Box::new(move |st| put(st, found)))
}

/// The reader of a kind whose resources its parent kind's reader reads.
pub(crate) async fn read_by_parent(_: &Ctx<'_>, _: &Clients, _: &ObserveScope) -> Result<Found, CloudError> {
    Ok(nothing())
}

/// Every kind's reader (`kinds::readers`, generated from the registration), all at once.
pub(crate) async fn observe(ctx: &Ctx<'_>, c: &Clients, scope: &ObserveScope) -> Result<AccountState, CloudError> {
    let found = futures::future::try_join_all(kinds::readers(ctx, c, scope)).await?;
    let mut state = AccountState {
        account_id: c.session.account_id.clone(),
        region: c.session.region.clone(),
        ..AccountState::default()
    };
    for store in found {
        store(&mut state);
    }
    // The time of the reads: the planner's clock (API key rotation overlaps).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    state.observed_at = Some(i64::try_from(now).unwrap_or(i64::MAX));
    Ok(state)
}

pub(crate) fn ec2_tags(tags: &[aws_sdk_ec2::types::Tag]) -> Tags {
    tags.iter().filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string()))).collect()
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
