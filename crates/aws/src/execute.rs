//! Every `Op` as the SDK call(s) that perform it; creates return the new id or ARN.

use std::collections::HashMap;

use aws_sdk_apigateway::types::{ConnectionType, EndpointConfiguration, EndpointType, IntegrationType};
use aws_sdk_ec2::types::{PeeringConnectionOptionsRequest, ResourceType, TagSpecification};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, IpAddressType, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    TargetDescription, TargetTypeEnum,
};
use crosslink_cloud::{CloudError, ErrorKind, Outcome};
use crosslink_plan::observed::{HealthCheckSettings, Tags};
use crosslink_plan::op::Op;

use crate::cloud::{Clients, Ctx};
use crate::errors::known;
use crate::kinds;

/// Targets in a peered VPC (outside the target group's VPC) must be registered in zone `all`.
const ALL_ZONES: &str = "all";

fn created(id: Option<&str>, what: &str) -> Result<Outcome, CloudError> {
    match id {
        Some(id) => Ok(Outcome::created(id)),
        None => Err(CloudError::new(
            ErrorKind::Retryable,
            "MissingId",
            format!("AWS created the {what} but returned no id"),
        )),
    }
}

fn done() -> Result<Outcome, CloudError> {
    Ok(Outcome::default())
}

fn ec2_tags(tags: &Tags) -> Vec<aws_sdk_ec2::types::Tag> {
    tags.iter().map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build()).collect()
}

fn elb_tags(tags: &Tags) -> Option<Vec<aws_sdk_elasticloadbalancingv2::types::Tag>> {
    let tags: Vec<_> = tags
        .iter()
        .map(|(k, v)| aws_sdk_elasticloadbalancingv2::types::Tag::builder().key(k).value(v).build())
        .collect();
    (!tags.is_empty()).then_some(tags)
}

fn apigw_tags(tags: &Tags) -> Option<HashMap<String, String>> {
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn forward(target_group_arn: &str) -> Action {
    Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(target_group_arn).build()
}

fn targets(targets: &[(std::net::Ipv4Addr, u16)]) -> Vec<TargetDescription> {
    targets
        .iter()
        .map(|(ip, port)| {
            TargetDescription::builder().id(ip.to_string()).port(i32::from(*port)).availability_zone(ALL_ZONES).build()
        })
        .collect()
}

/// A path is only valid on HTTP(S) health checks; NLB TCP checks reject it.
fn health_path(hc: &HealthCheckSettings) -> Option<String> {
    matches!(hc.protocol.to_ascii_uppercase().as_str(), "HTTP" | "HTTPS").then(|| hc.path.clone()).flatten()
}

pub(crate) async fn execute(ctx: &Ctx<'_>, c: &Clients, op: &Op) -> Result<Outcome, CloudError> {
    use Op::*;
    match op {
        CreateVpcPeeringConnection { vpc_id, peer_vpc_id, peer_owner_id, peer_region, tags } => {
            let mut req = c
                .ec2
                .create_vpc_peering_connection()
                .vpc_id(vpc_id)
                .peer_vpc_id(peer_vpc_id)
                .peer_owner_id(peer_owner_id)
                .peer_region(peer_region);
            if !tags.is_empty() {
                req = req.tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::VpcPeeringConnection)
                        .set_tags(Some(ec2_tags(tags)))
                        .build(),
                );
            }
            let subject = format!("{vpc_id} -> {peer_owner_id}/{peer_region}/{peer_vpc_id}");
            let out = ctx.write(&kinds::peering::CREATE, &subject, req.send()).await?;
            let p = out.vpc_peering_connection();
            let state = p.and_then(|p| p.status()).and_then(|s| s.code()).map(|c| c.as_str().to_string());
            Ok(Outcome { state, ..created(p.and_then(|p| p.vpc_peering_connection_id()), "peering connection")? })
        }
        AcceptVpcPeeringConnection { peering_id } => {
            let id = known(peering_id, "the peering connection")?;
            let req = c.ec2.accept_vpc_peering_connection().vpc_peering_connection_id(id);
            let out = ctx.write(&kinds::peering::ACCEPT, id, req.send()).await?;
            // Routes and DNS options follow in the same pass only once AWS says it is active.
            let state = out
                .vpc_peering_connection()
                .and_then(|p| p.status())
                .and_then(|s| s.code())
                .map(|c| c.as_str().to_string());
            Ok(Outcome { state, ..Outcome::default() })
        }
        SetPeeringDnsResolution { peering_id, allow } => {
            let peering_id = known(peering_id, "the peering connection")?;
            let options =
                PeeringConnectionOptionsRequest::builder().allow_dns_resolution_from_remote_vpc(*allow).build();
            let req = c
                .ec2
                .modify_vpc_peering_connection_options()
                .vpc_peering_connection_id(peering_id)
                .accepter_peering_connection_options(options);
            ctx.write(&kinds::peering::MODIFY_OPTIONS, peering_id, req.send()).await?;
            done()
        }
        DeleteVpcPeeringConnection { peering_id } => {
            let req = c.ec2.delete_vpc_peering_connection().vpc_peering_connection_id(peering_id);
            ctx.write(&kinds::peering::DELETE, peering_id, req.send()).await?;
            done()
        }
        CreateRoute { route_table_id, destination, peering_id } => {
            let pcx = known(peering_id, "the peering connection")?;
            let req = c
                .ec2
                .create_route()
                .route_table_id(route_table_id)
                .destination_cidr_block(destination.to_string())
                .vpc_peering_connection_id(pcx);
            ctx.write(&kinds::route::CREATE, &format!("{route_table_id} {destination} -> {pcx}"), req.send()).await?;
            done()
        }
        ReplaceRoute { route_table_id, destination, peering_id } => {
            let pcx = known(peering_id, "the peering connection")?;
            let req = c
                .ec2
                .replace_route()
                .route_table_id(route_table_id)
                .destination_cidr_block(destination.to_string())
                .vpc_peering_connection_id(pcx);
            ctx.write(&kinds::route::REPLACE, &format!("{route_table_id} {destination} -> {pcx}"), req.send()).await?;
            done()
        }
        DeleteRoute { route_table_id, destination } => {
            let req =
                c.ec2.delete_route().route_table_id(route_table_id).destination_cidr_block(destination.to_string());
            ctx.write(&kinds::route::DELETE, &format!("{route_table_id} {destination}"), req.send()).await?;
            done()
        }
        CreateEc2Tags { resource_id, tags } => {
            if tags.is_empty() {
                return done();
            }
            let req = c.ec2.create_tags().resources(resource_id).set_tags(Some(ec2_tags(tags)));
            ctx.write(&kinds::peering::CREATE_TAGS, resource_id, req.send()).await?;
            done()
        }

        CreateLoadBalancer { name, subnet_ids, tags } => {
            let req = c
                .elbv2
                .create_load_balancer()
                .name(name)
                .r#type(LoadBalancerTypeEnum::Network)
                .scheme(LoadBalancerSchemeEnum::Internal)
                .ip_address_type(IpAddressType::Ipv4)
                .set_subnets(Some(subnet_ids.clone()))
                .set_tags(elb_tags(tags));
            let out = ctx.write(&kinds::load_balancer::CREATE, name, req.send()).await?;
            let lb = out.load_balancers().first();
            Ok(Outcome {
                dns_name: lb.and_then(|l| l.dns_name()).map(str::to_string),
                state: lb.and_then(|l| l.state()).and_then(|s| s.code()).map(|c| c.as_str().to_string()),
                ..created(lb.and_then(|l| l.load_balancer_arn()), "load balancer")?
            })
        }
        DeleteLoadBalancer { arn } => {
            let req = c.elbv2.delete_load_balancer().load_balancer_arn(arn);
            ctx.write(&kinds::load_balancer::DELETE, arn, req.send()).await?;
            done()
        }
        CreateTargetGroup { name, vpc_id, port, health_check: hc, tags } => {
            let req = c
                .elbv2
                .create_target_group()
                .name(name)
                .protocol(ProtocolEnum::Tcp)
                .target_type(TargetTypeEnum::Ip)
                .vpc_id(vpc_id)
                .port(i32::from(*port))
                .health_check_enabled(true)
                .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                .set_health_check_path(health_path(hc))
                .health_check_port(&hc.port)
                .health_check_interval_seconds(i32::from(hc.interval_seconds))
                .healthy_threshold_count(i32::from(hc.healthy_threshold))
                .unhealthy_threshold_count(i32::from(hc.unhealthy_threshold))
                .set_tags(elb_tags(tags));
            let out = ctx.write(&kinds::target_group::CREATE, &format!("{name} in {vpc_id}"), req.send()).await?;
            created(out.target_groups().first().and_then(|t| t.target_group_arn()), "target group")
        }
        ModifyTargetGroup { arn, health_check: hc } => {
            let req = c
                .elbv2
                .modify_target_group()
                .target_group_arn(arn)
                .health_check_enabled(true)
                .health_check_protocol(ProtocolEnum::from(hc.protocol.as_str()))
                .set_health_check_path(health_path(hc))
                .health_check_port(&hc.port)
                .health_check_interval_seconds(i32::from(hc.interval_seconds))
                .healthy_threshold_count(i32::from(hc.healthy_threshold))
                .unhealthy_threshold_count(i32::from(hc.unhealthy_threshold));
            ctx.write(&kinds::target_group::MODIFY, arn, req.send()).await?;
            done()
        }
        DeleteTargetGroup { arn } => {
            let req = c.elbv2.delete_target_group().target_group_arn(arn);
            ctx.write(&kinds::target_group::DELETE, arn, req.send()).await?;
            done()
        }
        RegisterTargets { target_group_arn, targets: t } => {
            let arn = known(target_group_arn, "the target group")?;
            let req = c.elbv2.register_targets().target_group_arn(arn).set_targets(Some(targets(t)));
            ctx.write(&kinds::targets::REGISTER, &format!("{arn} {t:?}"), req.send()).await?;
            done()
        }
        DeregisterTargets { target_group_arn, targets: t } => {
            let req = c.elbv2.deregister_targets().target_group_arn(target_group_arn).set_targets(Some(targets(t)));
            ctx.write(&kinds::targets::DEREGISTER, &format!("{target_group_arn} {t:?}"), req.send()).await?;
            done()
        }
        CreateListener { load_balancer_arn, port, target_group_arn, tags } => {
            let lb = known(load_balancer_arn, "the load balancer")?;
            let tg = known(target_group_arn, "the target group")?;
            let req = c
                .elbv2
                .create_listener()
                .load_balancer_arn(lb)
                .protocol(ProtocolEnum::Tcp)
                .port(i32::from(*port))
                .default_actions(forward(tg))
                .set_tags(elb_tags(tags));
            let out = ctx.write(&kinds::listener::CREATE, &format!("{lb}:{port} -> {tg}"), req.send()).await?;
            created(out.listeners().first().and_then(|l| l.listener_arn()), "listener")
        }
        ModifyListener { arn, port, target_group_arn } => {
            let tg = known(target_group_arn, "the target group")?;
            let req = c
                .elbv2
                .modify_listener()
                .listener_arn(arn)
                .protocol(ProtocolEnum::Tcp)
                .port(i32::from(*port))
                .default_actions(forward(tg));
            ctx.write(&kinds::listener::MODIFY, &format!("{arn}:{port} -> {tg}"), req.send()).await?;
            done()
        }
        DeleteListener { arn } => {
            let req = c.elbv2.delete_listener().listener_arn(arn);
            ctx.write(&kinds::listener::DELETE, arn, req.send()).await?;
            done()
        }
        AddElbTags { arn, tags } => {
            let Some(tags) = elb_tags(tags) else { return done() };
            let req = c.elbv2.add_tags().resource_arns(arn).set_tags(Some(tags));
            ctx.write(&kinds::load_balancer::ADD_TAGS, arn, req.send()).await?;
            done()
        }

        CreateVpcLink { name, load_balancer_arn, tags } => {
            let lb = known(load_balancer_arn, "the load balancer")?;
            let req = c.apigateway.create_vpc_link().name(name).target_arns(lb).set_tags(apigw_tags(tags));
            let out = ctx.write(&kinds::vpc_link::CREATE, &format!("{name} -> {lb}"), req.send()).await?;
            Ok(Outcome { state: out.status().map(|s| s.as_str().to_string()), ..created(out.id(), "VPC link")? })
        }
        DeleteVpcLink { id } => {
            let req = c.apigateway.delete_vpc_link().vpc_link_id(id);
            ctx.write(&kinds::vpc_link::DELETE, id, req.send()).await?;
            done()
        }
        CreateRestApi { name, tags } => {
            let req = c
                .apigateway
                .create_rest_api()
                .name(name)
                .endpoint_configuration(EndpointConfiguration::builder().types(EndpointType::Regional).build())
                .set_tags(apigw_tags(tags));
            let out = ctx.write(&kinds::rest_api::CREATE, name, req.send()).await?;
            Ok(Outcome {
                root_resource_id: out.root_resource_id().map(str::to_string),
                ..created(out.id(), "REST API")?
            })
        }
        DeleteRestApi { id } => {
            let req = c.apigateway.delete_rest_api().rest_api_id(id);
            ctx.write(&kinds::rest_api::DELETE, id, req.send()).await?;
            done()
        }
        CreateResource { rest_api_id, parent_id, path_part, path } => {
            let api = known(rest_api_id, "the REST API")?;
            let parent = known(parent_id, "the parent resource")?;
            let req = c.apigateway.create_resource().rest_api_id(api).parent_id(parent).path_part(path_part);
            let out = ctx.write(&kinds::api_resource::CREATE, &format!("{api} {path}"), req.send()).await?;
            created(out.id(), "resource")
        }
        DeleteResource { rest_api_id, resource_id, path } => {
            let req = c.apigateway.delete_resource().rest_api_id(rest_api_id).resource_id(resource_id);
            let subject = format!("{rest_api_id} {path} ({resource_id})");
            ctx.write(&kinds::api_resource::DELETE, &subject, req.send()).await?;
            done()
        }
        PutProxyMethod { rest_api_id, resource_id, path, http_method, greedy, uri, vpc_link_id } => {
            let api = known(rest_api_id, "the REST API")?;
            let resource = known(resource_id, "the resource")?;
            let link = known(vpc_link_id, "the VPC link")?;
            let subject = format!("{api} {http_method} {path} -> {uri} via {link}");
            let mut put = c
                .apigateway
                .put_method()
                .rest_api_id(api)
                .resource_id(resource)
                .http_method(http_method)
                .authorization_type("NONE");
            if *greedy {
                put = put.request_parameters("method.request.path.proxy", true);
            }
            match ctx.write(&kinds::method::PUT, &subject, put.send()).await {
                Ok(_) => {}
                // The method is there already (an earlier, interrupted pass): only the
                // integration needs to be (re)put.
                Err(e) if e.code == "ConflictException" => {}
                Err(e) => return Err(e),
            }
            // ANY is passed through as ANY; any other verb as itself.
            let mut integration = c
                .apigateway
                .put_integration()
                .rest_api_id(api)
                .resource_id(resource)
                .http_method(http_method)
                .r#type(IntegrationType::HttpProxy)
                .integration_http_method(http_method)
                .uri(uri)
                .connection_type(ConnectionType::VpcLink)
                .connection_id(link);
            if *greedy {
                integration =
                    integration.request_parameters("integration.request.path.proxy", "method.request.path.proxy");
            }
            ctx.write(&kinds::method::PUT_INTEGRATION, &subject, integration.send()).await?;
            done()
        }
        DeleteMethod { rest_api_id, resource_id, path, http_method } => {
            let req =
                c.apigateway.delete_method().rest_api_id(rest_api_id).resource_id(resource_id).http_method(http_method);
            ctx.write(&kinds::method::DELETE, &format!("{rest_api_id} {http_method} {path}"), req.send()).await?;
            done()
        }
        CreateDeployment { rest_api_id, stage, description, stage_tags } => {
            let api = known(rest_api_id, "the REST API")?;
            let req = c.apigateway.create_deployment().rest_api_id(api).stage_name(stage).description(description);
            let subject = format!("{api} stage {stage}");
            let out = ctx.write(&kinds::stage::CREATE_DEPLOYMENT, &subject, req.send()).await?;
            let outcome = created(out.id(), "deployment")?;
            // If this fails, the stage keeps its old hash and the next pass deploys again.
            if let Some(tags) = apigw_tags(stage_tags) {
                let arn = format!("arn:aws:apigateway:{}::/restapis/{api}/stages/{stage}", c.session.region);
                let req = c.apigateway.tag_resource().resource_arn(&arn).set_tags(Some(tags));
                ctx.write(&kinds::stage::TAG, &arn, req.send()).await?;
            }
            Ok(outcome)
        }
    }
}
