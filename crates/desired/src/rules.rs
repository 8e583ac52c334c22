//! Formats of single values: names, ids, ARNs, regions, paths, target addresses.
//! Each check returns the problem and the fix, or nothing.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

pub type Problem = (String, String);

fn problem(msg: impl Into<String>, hint: impl Into<String>) -> Option<Problem> {
    Some((msg.into(), hint.into()))
}

/// RFC 1123 label, as Kubernetes names.
pub fn dns_label(name: &str) -> Option<Problem> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        return None;
    }
    let suggestion: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .chars()
        .take(63)
        .collect();
    let hint = if suggestion.is_empty() {
        "use lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit"
            .to_string()
    } else {
        format!("names are DNS labels (lower-case letters, digits and '-', at most 63 characters): e.g. `{suggestion}`")
    };
    problem(format!("`{name}` is not a valid name"), hint)
}

pub fn account_id(id: &str) -> Option<Problem> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    problem(format!("`{id}` is not an AWS account id"), "an account id is exactly 12 digits, quoted: \"111111111111\"")
}

pub fn region(r: &str) -> Option<Problem> {
    // e.g. eu-central-1, us-gov-west-1, ap-southeast-4, cn-north-1
    let parts: Vec<&str> = r.split('-').collect();
    let ok = parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok();
    if ok {
        return None;
    }
    problem(format!("`{r}` is not an AWS region name"), "write a region code such as eu-central-1 or us-east-1")
}

/// `arn:<partition>:iam::<account>:role/<path/name>`; returns the account on success.
pub fn role_arn(arn: &str) -> Result<String, Problem> {
    let bad = || {
        (
            format!("`{arn}` is not an IAM role ARN"),
            "write arn:aws:iam::<12-digit account id>:role/<role name>".to_string(),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6
        || parts[0] != "arn"
        || !parts[1].starts_with("aws")
        || parts[2] != "iam"
        || !parts[3].is_empty()
    {
        return Err(bad());
    }
    if account_id(parts[4]).is_some() {
        return Err(bad());
    }
    let Some(name) = parts[5].strip_prefix("role/") else {
        return Err(bad());
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c);
    if name.is_empty() || name.ends_with('/') || !name.chars().all(valid) {
        return Err(bad());
    }
    Ok(parts[4].to_string())
}

/// `arn:<partition>:lambda:<region>:<account>:function:<name>[:<alias or version>]`; returns
/// the region on success.
pub fn lambda_function_arn(arn: &str) -> Result<String, Problem> {
    let bad = || {
        (
            format!("`{arn}` is not a Lambda function ARN"),
            "write arn:aws:lambda:<region>:<12-digit account id>:function:<function name>".to_string(),
        )
    };
    let parts: Vec<&str> = arn.split(':').collect();
    if !(7..=8).contains(&parts.len())
        || parts[0] != "arn"
        || !parts[1].starts_with("aws")
        || parts[2] != "lambda"
        || region(parts[3]).is_some()
        || account_id(parts[4]).is_some()
        || parts[5] != "function"
    {
        return Err(bad());
    }
    let valid =
        |s: &str| !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
    if !valid(parts[6]) || parts.get(7).is_some_and(|q| !valid(q)) {
        return Err(bad());
    }
    Ok(parts[3].to_string())
}

/// Where API Gateway can send access logs: a CloudWatch Logs group
/// (`arn:<partition>:logs:<region>:<account>:log-group:<name>`, without a trailing `:*`) or a
/// Kinesis Data Firehose stream whose name starts with `amazon-apigateway-`.
pub fn access_log_destination(arn: &str) -> Option<Problem> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let head_ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && region(parts[3]).is_none()
        && account_id(parts[4]).is_none();
    let hint = "write arn:aws:logs:<region>:<account id>:log-group:<name>, or arn:aws:firehose:<region>:<account id>:deliverystream/amazon-apigateway-<name>";
    if !head_ok {
        return problem(format!("`{arn}` is not a CloudWatch Logs group or Firehose stream ARN"), hint);
    }
    match parts[2] {
        "logs" => match parts[5].strip_prefix("log-group:") {
            Some(name) if name.ends_with(":*") => problem(
                format!("`{arn}` ends in `:*` (the log streams), which API Gateway refuses"),
                format!("write the group's ARN without it: {}", arn.trim_end_matches(":*")),
            ),
            Some(name) if !name.is_empty() && !name.contains(':') => None,
            _ => problem(format!("`{arn}` is not a CloudWatch Logs group ARN"), hint),
        },
        "firehose" => match parts[5].strip_prefix("deliverystream/") {
            Some(name) if name.starts_with("amazon-apigateway-") => None,
            Some(name) => problem(
                format!(
                    "API Gateway delivers access logs only to Firehose streams named amazon-apigateway-*, not `{name}`"
                ),
                "rename the stream amazon-apigateway-<name>",
            ),
            None => problem(format!("`{arn}` is not a Firehose delivery stream ARN"), hint),
        },
        _ => problem(format!("`{arn}` is not a CloudWatch Logs group or Firehose stream ARN"), hint),
    }
}

/// A regional WAFv2 web ACL: `arn:<partition>:wafv2:<region>:<account>:regional/webacl/<name>/<id>`
/// (API Gateway stages take regional web ACLs only; CloudFront's are `global/`).
pub fn regional_web_acl(arn: &str) -> Option<Problem> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let hint = "write arn:aws:wafv2:<region>:<account id>:regional/webacl/<name>/<id> (the ARN the WAF console shows)";
    let head = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "wafv2"
        && region(parts[3]).is_none()
        && account_id(parts[4]).is_none();
    if !head {
        return problem(format!("`{arn}` is not a WAFv2 web ACL ARN"), hint);
    }
    let rest: Vec<&str> = parts[5].split('/').collect();
    match rest.as_slice() {
        ["regional", "webacl", name, id] if !name.is_empty() && !id.is_empty() => None,
        ["global", ..] => problem(
            format!("`{arn}` is a CloudFront (global) web ACL; an API Gateway stage takes a regional one"),
            "create the web ACL with scope REGIONAL in the gateway's region",
        ),
        _ => problem(format!("`{arn}` is not a WAFv2 web ACL ARN"), hint),
    }
}

/// A custom domain name: a lower-case DNS name of at least two labels, each 1-63 letters, digits
/// and `-` (not at either end), at most 253 characters, not AWS's own.
pub fn custom_domain_name(name: &str) -> Option<Problem> {
    domain_name(
        name,
        "write the name callers use, in lower case, e.g. api.bank.example",
        "a custom domain is a name of your own, e.g. api.bank.example",
    )
}

/// The name API Gateway checks a link's TLS certificate against: a DNS name the certificate
/// covers (not the load balancer's own name: ACM issues no certificate for it).
pub fn server_name(name: &str) -> Option<Problem> {
    domain_name(
        name,
        "write the name the listener's certificate covers, in lower case, e.g. payments.internal.bank.example",
        "ACM issues no certificate for AWS's names: use a name of your own the certificate covers, e.g. payments.internal.bank.example",
    )
}

fn domain_name(name: &str, hint: &str, aws_hint: &str) -> Option<Problem> {
    if name.len() > 253 || name.split('.').count() < 2 {
        return problem(format!("`{name}` is not a domain name"), hint);
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if let Some(bad) = name.split('.').find(|l| !label_ok(l)) {
        let lower = name.to_ascii_lowercase();
        if lower.split('.').all(label_ok) {
            return problem(format!("`{name}` has upper-case letters"), format!("write it in lower case: {lower}"));
        }
        return problem(format!("`{name}` is not a domain name: the label `{bad}` is not a DNS label"), hint);
    }
    if name.ends_with(".amazonaws.com") {
        return problem(format!("`{name}` is AWS's own name"), aws_hint);
    }
    None
}

/// An ACM certificate ARN in the gateway's region (a regional custom domain and a load
/// balancer's listener take a certificate of their own region); `user` says which.
pub fn acm_certificate(arn: &str, gateway_region: Option<&str>, user: &str) -> Option<Problem> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let hint = "write arn:aws:acm:<region>:<account id>:certificate/<id> (the ARN the ACM console shows)";
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && region(parts[3]).is_none()
        && account_id(parts[4]).is_none()
        && parts[5].strip_prefix("certificate/").is_some_and(|id| !id.is_empty());
    if !ok {
        return problem(format!("`{arn}` is not an ACM certificate ARN"), hint);
    }
    match gateway_region {
        Some(r) if r != parts[3] => problem(
            format!("the certificate is in {}, but the gateway is in {r}", parts[3]),
            format!("{user} takes a certificate of its own region: request or import one in {r}"),
        ),
        _ => None,
    }
}

/// An NLB TLS listener's security policy: one of ELB's `ELBSecurityPolicy-...` names (AWS
/// adds new ones: the name's form is checked, and AWS checks the name).
pub fn ssl_policy(name: &str) -> Option<Problem> {
    let ok = name
        .strip_prefix("ELBSecurityPolicy-")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    if ok {
        return None;
    }
    let hint = if name.starts_with("TLS") || name.starts_with("20") {
        format!("ELB's names start with ELBSecurityPolicy-: write ELBSecurityPolicy-{name}")
    } else {
        format!("write e.g. {} (the default: TLS 1.3 and 1.2)", crate::model::DEFAULT_SSL_POLICY)
    };
    problem(format!("`{name}` is not an ELB security policy"), hint)
}

/// A base path mapping's path: one or more segments of letters, digits and `-._~`, separated by
/// `/`, with no leading or trailing `/`.
pub fn base_path(path: &str) -> Option<Problem> {
    let ok = !path.is_empty()
        && path.split('/').all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)));
    if ok {
        None
    } else {
        problem(
            format!("`{path}` is not a base path"),
            "write segments of letters, digits and -._~ separated by / with no leading or trailing /, e.g. open-banking or v1/payments; leave it out to map the root",
        )
    }
}

/// A mutual TLS truststore: an object in S3.
pub fn truststore_uri(uri: &str) -> Option<Problem> {
    match uri.strip_prefix("s3://").and_then(|r| r.split_once('/')) {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => None,
        _ => problem(format!("`{uri}` is not an S3 object URI"), "write s3://<bucket>/<key> of the PEM truststore"),
    }
}

/// A REST API resource policy: the shape IAM requires (a `Statement` list, each with an `Effect`,
/// a principal, an action and a resource), and no statement that locks every caller out: a
/// `Deny` of everyone, for every action on every resource, with no condition. Each problem comes
/// with the field (relative to the policy) it is about.
pub fn resource_policy(policy: &serde_json::Value) -> Vec<(String, Problem)> {
    use serde_json::Value;
    let mut out = Vec::new();
    let mut bad = |field: String, msg: String, hint: &str| out.push((field, (msg, hint.to_string())));
    let Some(statements) = policy.get("Statement").and_then(Value::as_array) else {
        bad(
            String::new(),
            "a resource policy needs a `Statement` list".into(),
            "write Statement: [{Effect: Allow, Principal: \"*\", Action: execute-api:Invoke, Resource: \"execute-api:/*\", Condition: {...}}]",
        );
        return out;
    };
    if let Some(v) = policy.get("Version").and_then(Value::as_str)
        && v != "2012-10-17"
    {
        bad(
            "Version".into(),
            format!("`{v}` is not the policy language version API Gateway reads"),
            "write Version: \"2012-10-17\"",
        );
    }
    let everything = |v: Option<&Value>, all: &[&str]| match v {
        Some(Value::String(s)) => all.contains(&s.as_str()),
        Some(Value::Array(xs)) => xs.iter().any(|x| x.as_str().is_some_and(|s| all.contains(&s))),
        _ => false,
    };
    for (i, st) in statements.iter().enumerate() {
        let f = |k: &str| format!("Statement[{i}].{k}");
        let effect = st.get("Effect").and_then(Value::as_str);
        if !matches!(effect, Some("Allow" | "Deny")) {
            bad(
                f("Effect"),
                "each statement needs `Effect: Allow` or `Effect: Deny`".into(),
                "write Effect: Allow or Effect: Deny",
            );
        }
        if st.get("Principal").is_none() && st.get("NotPrincipal").is_none() {
            bad(
                format!("Statement[{i}]"),
                "a resource policy statement needs a `Principal`".into(),
                "write Principal: \"*\" and narrow it with a Condition, or name accounts: Principal: {AWS: [arn:aws:iam::<account id>:root]}",
            );
        }
        if st.get("Action").is_none() && st.get("NotAction").is_none() {
            bad(format!("Statement[{i}]"), "a statement needs an `Action`".into(), "write Action: execute-api:Invoke");
        }
        if st.get("Resource").is_none() && st.get("NotResource").is_none() {
            bad(
                format!("Statement[{i}]"),
                "a statement needs a `Resource`".into(),
                "write Resource: \"execute-api:/*\" (every method of every stage), or narrow it",
            );
        }
        let principal = st.get("Principal");
        let everyone = principal.is_some_and(|p| p == "*" || everything(p.get("AWS"), &["*"]));
        let lockout = effect == Some("Deny")
            && everyone
            && everything(st.get("Action"), &["*", "execute-api:*", "execute-api:Invoke"])
            && everything(st.get("Resource"), &["*", "execute-api:/*", "execute-api:*"])
            && st.get("Condition").is_none_or(|c| c.as_object().is_some_and(|o| o.is_empty()));
        if lockout {
            bad(
                format!("Statement[{i}]"),
                "this statement denies everyone every call, with no condition: it locks every caller out of the API"
                    .into(),
                "add the Condition under which to deny (e.g. StringNotEquals: {aws:SourceVpce: vpce-...}, or NotIpAddress: {aws:SourceIp: [...]})",
            );
        }
    }
    out
}

/// `arn:<partition>:cognito-idp:<region>:<account>:userpool/<region>_<id>`.
pub fn user_pool_arn(arn: &str) -> Option<Problem> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "cognito-idp"
        && region(parts[3]).is_none()
        && account_id(parts[4]).is_none()
        && parts[5]
            .strip_prefix("userpool/")
            .and_then(|id| id.split_once('_'))
            .is_some_and(|(r, id)| r == parts[3] && !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()));
    if ok {
        return None;
    }
    problem(
        format!("`{arn}` is not a Cognito user pool ARN"),
        "write arn:aws:cognito-idp:<region>:<12-digit account id>:userpool/<region>_<pool id>",
    )
}

/// `<prefix>-` followed by 8 or 17 hex digits, as EC2 ids are.
pub fn ec2_id(id: &str, prefix: &str, what: &str) -> Option<Problem> {
    let ok = id.strip_prefix(prefix).and_then(|s| s.strip_prefix('-')).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17) && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        return None;
    }
    let hint = match id.split_once('-') {
        Some((p, _)) if p != prefix => {
            format!("a {what} id starts with `{prefix}-`; `{p}-` is another kind of resource")
        }
        _ => format!(
            "a {what} id is `{prefix}-` followed by 8 or 17 lower-case hex digits, e.g. {prefix}-0a1b2c3d4e5f60718"
        ),
    };
    problem(format!("`{id}` is not a {what} id"), hint)
}

/// An ELBv2 load balancer ARN; returns (region, account).
pub fn load_balancer_arn(arn: &str) -> Result<(String, String), Problem> {
    let bad = || {
        (
            format!("`{arn}` is not a load balancer ARN"),
            "write arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<id>".to_string(),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") || parts[2] != "elasticloadbalancing" {
        return Err(bad());
    }
    if region(parts[3]).is_some() || account_id(parts[4]).is_some() {
        return Err(bad());
    }
    let rest = parts[5];
    let is_net = rest.starts_with("loadbalancer/net/");
    // moto reports network load balancers as `app/`; accept both, AWS rejects a VPC Link to an ALB.
    if !(is_net || rest.starts_with("loadbalancer/app/")) || rest.split('/').count() != 4 {
        return Err(bad());
    }
    Ok((parts[3].to_string(), parts[4].to_string()))
}

/// An ELBv2 name (load balancers, target groups): 1-32 alphanumerics and hyphens.
pub fn elb_name(name: &str) -> Option<Problem> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-");
    if ok {
        return None;
    }
    problem(
        format!("`{name}` is not a valid load balancer name"),
        "use 1-32 letters, digits and '-', not starting or ending with '-' nor with `internal-`",
    )
}

pub fn rest_api_id(id: &str) -> Option<Problem> {
    if id.len() == 10 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return None;
    }
    problem(
        format!("`{id}` is not a REST API id"),
        "a REST API id is 10 lower-case letters and digits, as in https://<id>.execute-api.<region>.amazonaws.com",
    )
}

pub fn vpc_link_id(id: &str) -> Option<Problem> {
    if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return None;
    }
    problem(
        format!("`{id}` is not a VPC link id"),
        "a REST VPC link id is lower-case letters and digits, as `aws apigateway get-vpc-links` shows it (e.g. gim7c3)",
    )
}

pub fn stage_name(s: &str) -> Option<Problem> {
    if !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    problem(format!("`{s}` is not a valid stage name"), "use letters, digits, '-' and '_' (at most 128)")
}

/// A route path: `/seg[/seg...]`, segments of the characters API Gateway allows in a path part.
pub fn route_path(p: &str) -> Option<Problem> {
    if !p.starts_with('/') {
        return problem(format!("`{p}` does not start with '/'"), format!("write /{}", p.trim_start_matches('/')));
    }
    if p == "/" {
        return problem("`/` would claim the whole API", "name at least one path segment, e.g. /payments");
    }
    if p.ends_with('/') {
        return problem(format!("`{p}` ends with '/'"), format!("write {}", p.trim_end_matches('/')));
    }
    for seg in p[1..].split('/') {
        if seg.is_empty() {
            return problem(format!("`{p}` has an empty segment"), "remove the doubled '/'");
        }
        if seg.contains('{') || seg.contains('}') {
            return problem(
                format!("`{p}` has a path parameter"),
                "write the prefix only: every route also serves everything below it ({proxy+})",
            );
        }
        if !seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~:@".contains(&b)) {
            return problem(
                format!("`{p}` has a character API Gateway does not allow in a path"),
                "use letters, digits and - . _ ~ in path segments",
            );
        }
    }
    None
}

/// Whether one path equals or lies below the other (`/pay` and `/pay/x`, not `/pay` and `/payments`).
pub fn paths_overlap(a: &str, b: &str) -> bool {
    let below =
        |long: &str, short: &str| long.strip_prefix(short).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    below(a, b) || below(b, a)
}

/// Where an IP target outside the NLB's VPC may be (the AWS rule): RFC 1918 or 100.64.0.0/10.
pub fn target_ip(ip: Ipv4Addr) -> Option<Problem> {
    const ALLOWED: [&str; 4] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"];
    if ALLOWED.iter().any(|n| n.parse::<Ipv4Net>().expect("valid").contains(&ip)) {
        return None;
    }
    problem(
        format!("{ip} cannot be a target through a peering"),
        "AWS only registers IP targets outside the NLB's VPC from 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or 100.64.0.0/10",
    )
}

/// Tag keys users may set; crosslink's and AWS's own prefixes are reserved.
pub fn tag_key(k: &str) -> Option<Problem> {
    if k.starts_with("crosslink.dev/") || k.to_ascii_lowercase().starts_with("aws:") {
        return problem(
            format!("tag key `{k}` is reserved"),
            "crosslink.dev/ and aws: tags are set by crosslink and AWS; choose another key",
        );
    }
    if k.is_empty() || k.len() > 128 {
        return problem(format!("tag key `{k}` must have 1-128 characters"), "shorten the key");
    }
    None
}

pub fn tag_value(v: &str) -> Option<Problem> {
    if v.len() > 256 {
        return problem("tag value is longer than 256 characters", "shorten the value");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns_label("payments-eu").is_none());
        assert!(dns_label("Payments").is_some());
        assert!(dns_label("-x").is_some());
        assert!(dns_label(&"a".repeat(64)).is_some());
        assert!(dns_label("Payments_EU").unwrap().1.contains("payments-eu"));
    }

    #[test]
    fn ids() {
        assert!(ec2_id("vpc-0a1b2c3d4e5f60718", "vpc", "VPC").is_none());
        assert!(ec2_id("vpc-12345678", "vpc", "VPC").is_none());
        assert!(ec2_id("subnet-12345678", "vpc", "VPC").unwrap().1.contains("another kind"));
        assert!(ec2_id("vpc-XYZ", "vpc", "VPC").is_some());
        assert!(rest_api_id("a1b2c3d4e5").is_none());
        assert!(rest_api_id("A1b2c3d4e5").is_some());
    }

    #[test]
    fn arns() {
        assert_eq!(role_arn("arn:aws:iam::111111111111:role/crosslink").unwrap(), "111111111111");
        assert_eq!(role_arn("arn:aws:iam::111111111111:role/ops/crosslink").unwrap(), "111111111111");
        assert!(role_arn("arn:aws:iam::111111111111:user/bob").is_err());
        assert!(role_arn("arn:aws:iam::1111:role/x").is_err());
        let (r, a) = load_balancer_arn(
            "arn:aws:elasticloadbalancing:eu-central-1:111111111111:loadbalancer/net/edge/50dc6c495c0c9188",
        )
        .unwrap();
        assert_eq!((r.as_str(), a.as_str()), ("eu-central-1", "111111111111"));
        assert!(load_balancer_arn("arn:aws:elasticloadbalancing:eu-central-1:111111111111:targetgroup/x/1").is_err());
    }

    #[test]
    fn regions() {
        for r in ["eu-central-1", "us-gov-west-1", "ap-southeast-4"] {
            assert!(region(r).is_none(), "{r}");
        }
        for r in ["europe", "eu-central", "EU-central-1", "eu--1"] {
            assert!(region(r).is_some(), "{r}");
        }
    }

    #[test]
    fn paths() {
        assert!(route_path("/payments").is_none());
        assert!(route_path("/payments/v1").is_none());
        assert!(route_path("payments").is_some());
        assert!(route_path("/").is_some());
        assert!(route_path("/a//b").is_some());
        assert!(route_path("/a/").is_some());
        assert!(route_path("/a/{id}").is_some());
        assert!(paths_overlap("/pay", "/pay/x"));
        assert!(paths_overlap("/pay", "/pay"));
        assert!(!paths_overlap("/pay", "/payments"));
    }

    #[test]
    fn targets() {
        assert!(target_ip("10.20.1.15".parse().unwrap()).is_none());
        assert!(target_ip("100.64.0.1".parse().unwrap()).is_none());
        assert!(target_ip("172.31.255.255".parse().unwrap()).is_none());
        assert!(target_ip("172.32.0.1".parse().unwrap()).is_some());
        assert!(target_ip("8.8.8.8".parse().unwrap()).is_some());
    }
}
