//! What the kinds' operations share when they call AWS (`crate::kinds::<kind>::execute` performs
//! each kind's operations; creates return the new id or ARN).

use std::collections::HashMap;

use crosslink_cloud::{CloudError, ErrorKind, Outcome};
use crosslink_plan::observed::Tags;

pub(crate) fn created(id: Option<&str>, what: &str) -> Result<Outcome, CloudError> {
    match id {
        Some(id) => Ok(Outcome::created(id)),
        None => Err(CloudError::new(
            ErrorKind::Retryable,
            "MissingId",
            format!("AWS created the {what} but returned no id"),
        )),
    }
}

pub(crate) fn done() -> Result<Outcome, CloudError> {
    Ok(Outcome::default())
}

pub(crate) fn ec2_tags(tags: &Tags) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter().map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()).collect()
}

pub(crate) fn elb_tags(tags: &Tags) -> Option<Vec<aws_sdk_elasticloadbalancingv2::types::Tag>> {
    let tags: Vec<_> = tags
        .iter()
        .map(|(k, v)| aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(k).value(v).build())
        .collect();
    (!tags.is_empty()).then_some(tags)
}

pub(crate) fn apigw_tags(tags: &Tags) -> Option<HashMap<String, String>> {
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// API Gateway PATCH operations (UpdateStage, UpdateAuthorizer).
pub(crate) fn apigw_patches(patches: &[crosslink_plan::op::Patch]) -> Vec<aws_sdk_apigateway::types::PatchOperation> {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    use crosslink_plan::op::PatchOp;
    patches
        .iter()
        .map(|p| {
            let b = PatchOperation::builder().path(&p.path);
            match p.op {
                PatchOp::Replace => b.op(Op::Replace).value(&p.value).build(),
                PatchOp::Remove => b.op(Op::Remove).build(),
            }
        })
        .collect()
}
