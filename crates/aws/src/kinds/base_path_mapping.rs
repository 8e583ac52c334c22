//! The base path mapping of a gateway's custom domain to its stage (read with the domain name).

use crosslink_cloud::{CloudError, Outcome};
use crosslink_plan::kinds::BasePathMappingOp;
use crosslink_plan::kinds::base_path_mapping::ROOT;

use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::execute::{apigw_patches, done};
use crate::kinds::domain_name::mapping;

pub static KIND: super::Kind = super::Kind {
    name: "base path mapping",
    calls: &[&mapping::CREATE, &mapping::UPDATE, &mapping::DELETE],
    grants: &[&mapping::CHANGE],
};

/// AWS takes the root as an empty base path, and names it `(none)` when it answers.
fn path_param(base_path: &str) -> &str {
    if base_path == ROOT { "" } else { base_path }
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &BasePathMappingOp) -> Result<Outcome, CloudError> {
    use BasePathMappingOp::*;
    match op {
        CreateBasePathMapping { domain_name, base_path, rest_api_id, stage } => {
            let api = known(rest_api_id, "the REST API")?;
            let req = c
                .apigateway
                .create_base_path_mapping()
                .domain_name(domain_name)
                .base_path(path_param(base_path))
                .rest_api_id(api)
                .stage(stage);
            ctx.write(&mapping::CREATE, &format!("{domain_name}/{base_path}"), req.send()).await?;
            done()
        }
        UpdateBasePathMapping { domain_name, base_path, patches } => {
            let req = c
                .apigateway
                .update_base_path_mapping()
                .domain_name(domain_name)
                .base_path(base_path)
                .set_patch_operations(Some(apigw_patches(patches)));
            ctx.write(&mapping::UPDATE, &format!("{domain_name}/{base_path}"), req.send()).await?;
            done()
        }
        DeleteBasePathMapping { domain_name, base_path } => {
            let req = c.apigateway.delete_base_path_mapping().domain_name(domain_name).base_path(base_path);
            ctx.write(&mapping::DELETE, &format!("{domain_name}/{base_path}"), req.send()).await?;
            done()
        }
    }
}

/// Read with the domain name (`domain_name::read`).
pub(crate) use crate::observe::read_by_parent as read;
