//! AWS SDK errors -> `CloudError`: the AWS error code is kept as is, and a kind (throttled,
//! retryable, not found, conflict, access denied, permanent) drives what the engine does next.

use std::error::Error;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_sts::operation::assume_role::AssumeRoleError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use crosslink_cloud::{CloudError, ErrorKind};
use crosslink_plan::op::Ref;

use crate::session::error_chain;

/// Codes AWS uses to say "slow down" (EC2, ELBv2, API Gateway, STS).
const THROTTLED: &[&str] = &[
    "RequestLimitExceeded",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "PriorRequestNotComplete",
    "SlowDown",
];

/// Server-side or transport failures that usually pass. `DispatchFailure`, `Timeout` and
/// `ResponseError` are the adapter's own codes for SDK errors that carry no AWS code.
const RETRYABLE: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "Unavailable",
    "DispatchFailure",
    "Timeout",
    "ResponseError",
    "CredentialsTimeout",
];

/// The resource is busy or in a state that forbids the call for now.
const CONFLICT: &[&str] = &[
    "DependencyViolation",
    "ResourceInUse",
    "ResourceInUseException",
    "ConflictException",
    "IncorrectState",
    "InvalidStateException",
];

/// Credentials, identity and permissions. `AccountMismatch` and `Credentials*` are the adapter's
/// own codes (identity check, credential providers).
const ACCESS_DENIED: &[&str] = &[
    "UnauthorizedOperation",
    "UnauthorizedException",
    "AuthFailure",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "InvalidAccessKeyId",
    "AccountMismatch",
    "CredentialsNotLoaded",
    "CredentialsProviderError",
];

/// The kind of an AWS error, from its code and (when a response came back) its HTTP status.
/// Codes decide first; the status only classifies codes this table does not know.
///
/// `OperationNotPermitted` is deliberately permanent: ELBv2 answers it for deletion protection
/// and unsupported combinations, which do not heal by waiting.
pub fn classify(code: &str, http_status: Option<u16>) -> ErrorKind {
    if THROTTLED.contains(&code) {
        return ErrorKind::Throttled;
    }
    if code.starts_with("AccessDenied") || code.starts_with("ExpiredToken") || ACCESS_DENIED.contains(&code) {
        return ErrorKind::AccessDenied;
    }
    if code.contains("NotFound") {
        return ErrorKind::NotFound;
    }
    if CONFLICT.contains(&code) {
        return ErrorKind::Conflict;
    }
    if RETRYABLE.contains(&code) {
        return ErrorKind::Retryable;
    }
    match http_status {
        Some(429) => ErrorKind::Throttled,
        Some(s) if s >= 500 => ErrorKind::Retryable,
        _ => ErrorKind::Permanent,
    }
}

/// Maps any SDK error to a `CloudError`, keeping the AWS error code and the whole source chain.
pub fn from_sdk<E>(e: &SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let mut message = error_chain(e);
    let code = match e {
        SdkError::ServiceError(_) if e.code().is_some() => e.code().unwrap_or_default().to_string(),
        // No AWS code (an HTML error page, a body that does not parse): the status is all there
        // is to go by, so say it.
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            if let Some(s) = status {
                message = format!("HTTP {s}: {message}");
            }
            match e {
                SdkError::ServiceError(_) => "UnknownServiceError".to_string(),
                _ => "ResponseError".to_string(),
            }
        }
        SdkError::TimeoutError(_) => "Timeout".to_string(),
        // Credentials are resolved before the request is sent: their failures surface here.
        SdkError::DispatchFailure(_) | SdkError::ConstructionFailure(_) => {
            if let Some(mut c) = credentials_failure(e) {
                c.message = message;
                return c;
            }
            match e {
                SdkError::DispatchFailure(_) => "DispatchFailure".to_string(),
                _ => "ConstructionFailure".to_string(),
            }
        }
        _ => "UnknownError".to_string(),
    };
    CloudError { kind: classify(&code, status), code, message }
}

/// When an error was caused by the credential provider, the error that says why: the AssumeRole
/// answer when there is one (`AccessDenied`, `ValidationError`, ...), else the provider's failure.
fn credentials_failure(e: &(dyn Error + 'static)) -> Option<CloudError> {
    let mut creds = None;
    // Start below `e`: `e` itself is what `from_sdk` is classifying (starting at it recursed
    // forever when STS was unreachable).
    let mut cur = e.source();
    while let Some(err) = cur {
        if let Some(sts) = err.downcast_ref::<SdkError<AssumeRoleError, HttpResponse>>() {
            return Some(from_sdk(sts));
        }
        if creds.is_none() {
            creds = err.downcast_ref::<CredentialsError>();
        }
        cur = err.source();
    }
    let code = match creds? {
        CredentialsError::CredentialsNotLoaded(_) => "CredentialsNotLoaded",
        CredentialsError::ProviderTimedOut(_) => "CredentialsTimeout",
        CredentialsError::InvalidConfiguration(_) => "InvalidCredentialsConfiguration",
        _ => "CredentialsProviderError",
    };
    Some(CloudError::new(classify(code, None), code, String::new()))
}

/// An operation reached the adapter with an id that is not known yet: the engine must wait for
/// the action that creates it.
pub(crate) fn known<'a>(r: &'a Ref, what: &str) -> Result<&'a str, CloudError> {
    r.known().ok_or_else(|| {
        CloudError::new(ErrorKind::Permanent, "UnresolvedReference", format!("{what} is not known yet: {r}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorKind::*;

    #[test]
    fn classification_table() {
        let cases: &[(&str, Option<u16>, ErrorKind)] = &[
            ("RequestLimitExceeded", Some(503), Throttled),
            ("Throttling", Some(400), Throttled),
            ("ThrottlingException", Some(400), Throttled),
            ("TooManyRequestsException", Some(429), Throttled),
            ("RequestThrottled", None, Throttled),
            ("PriorRequestNotComplete", Some(400), Throttled),
            // API Gateway's rate limit answer: unknown code, 429.
            ("LimitExceededException", Some(429), Throttled),
            ("InternalError", Some(500), Retryable),
            ("ServiceUnavailable", Some(503), Retryable),
            ("UnknownServiceError", Some(502), Retryable),
            ("DispatchFailure", None, Retryable),
            ("Timeout", None, Retryable),
            ("ResponseError", Some(200), Retryable),
            ("InvalidVpcPeeringConnectionID.NotFound", Some(400), NotFound),
            ("InvalidRouteTableID.NotFound", Some(400), NotFound),
            ("InvalidRoute.NotFound", Some(400), NotFound),
            ("NotFoundException", Some(404), NotFound),
            ("TargetGroupNotFound", Some(400), NotFound),
            ("ListenerNotFound", Some(400), NotFound),
            ("LoadBalancerNotFound", Some(400), NotFound),
            ("DependencyViolation", Some(400), Conflict),
            ("ResourceInUse", Some(400), Conflict),
            ("ConflictException", Some(409), Conflict),
            ("IncorrectState", Some(400), Conflict),
            ("InvalidStateException", Some(400), Conflict),
            ("AccessDenied", Some(403), AccessDenied),
            ("AccessDeniedException", Some(403), AccessDenied),
            ("UnauthorizedOperation", Some(403), AccessDenied),
            ("AuthFailure", Some(401), AccessDenied),
            ("InvalidClientTokenId", Some(403), AccessDenied),
            ("ExpiredToken", Some(400), AccessDenied),
            ("ExpiredTokenException", Some(400), AccessDenied),
            ("SignatureDoesNotMatch", Some(403), AccessDenied),
            ("UnrecognizedClientException", Some(403), AccessDenied),
            ("AccountMismatch", None, AccessDenied),
            ("CredentialsNotLoaded", None, AccessDenied),
            ("InvalidParameterValue", Some(400), Permanent),
            ("RouteAlreadyExists", Some(400), Permanent),
            ("DuplicateTargetGroupName", Some(400), Permanent),
            ("OperationNotPermitted", Some(400), Permanent),
            ("VpcPeeringConnectionLimitExceeded", Some(400), Permanent),
            ("BadRequestException", Some(400), Permanent),
            ("ValidationError", Some(400), Permanent),
            ("UnresolvedReference", None, Permanent),
        ];
        for (code, status, want) in cases {
            assert_eq!(classify(code, *status), *want, "{code} {status:?}");
        }
    }
}
