//! The AWS operations a plan is made of, with every parameter the call needs. An id that does
//! not exist yet is `Ref::Pending`: its action waits for the one that creates it, and the next
//! round of observe -> plan fills it in.

use std::fmt;

use serde::Serialize;

pub use crate::kinds::*;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ref {
    Known(String),
    /// Not known when planning: made by an earlier action of the same plan (the engine hands it
    /// over within the pass, as soon as that action answers), or awaited (an asynchronous AWS
    /// state, such as a VPC link becoming AVAILABLE; a later observation fills it in).
    Pending(Pending),
}

/// An id not known when planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// What it is known after, for people: `REST API open-banking`.
    pub what: String,
    /// The action of the plan (its id) whose answer carries it, and which value of the answer;
    /// `None` while it waits for AWS rather than for an action.
    pub by: Option<(usize, Output)>,
}

impl From<String> for Pending {
    /// Awaited: no action of the plan makes it.
    fn from(what: String) -> Self {
        Pending { what, by: None }
    }
}

impl From<&str> for Pending {
    fn from(what: &str) -> Self {
        Pending { what: what.to_string(), by: None }
    }
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// One operation of an API Gateway PATCH request (UpdateStage, UpdateAuthorizer, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Patch {
    pub op: PatchOp,
    pub path: String,
    /// Empty for `remove`.
    pub value: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOp {
    Replace,
    Remove,
}

impl Patch {
    pub fn replace(path: impl Into<String>, value: impl Into<String>) -> Patch {
        Patch { op: PatchOp::Replace, path: path.into(), value: value.into() }
    }

    pub fn remove(path: impl Into<String>) -> Patch {
        Patch { op: PatchOp::Remove, path: path.into(), value: String::new() }
    }
}

impl fmt::Display for Patch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            PatchOp::Replace => write!(f, "{}={}", self.path, self.value),
            PatchOp::Remove => write!(f, "-{}", self.path),
        }
    }
}

/// Which value of a create's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Output {
    /// The id or ARN of what was created.
    Id,
    /// A new REST API's root resource `/`.
    RootResourceId,
    /// A new load balancer's DNS name.
    DnsName,
    /// A new endpoint service's name (`com.amazonaws.vpce.<region>.vpce-svc-...`).
    ServiceName,
}

impl Ref {
    /// An id that the plan's action `by` creates.
    pub fn created(what: impl Into<String>, by: usize, output: Output) -> Ref {
        Ref::Pending(Pending { what: what.into(), by: Some((by, output)) })
    }

    /// The action that makes it and which value of its answer, when an action of the plan does.
    pub fn made_by(&self) -> Option<(usize, Output)> {
        match self {
            Ref::Pending(p) => p.by,
            Ref::Known(_) => None,
        }
    }
}

/// A known id is the id; one not known yet is `{"knownAfterApply": "<what creates it>"}`, so that
/// a machine reading a plan never mistakes a label for an ARN.
impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Ref::Known(id) => s.serialize_str(id),
            Ref::Pending(p) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("knownAfterApply", &p.what)?;
                m.end()
            }
        }
    }
}

impl Ref {
    pub fn known(&self) -> Option<&str> {
        match self {
            Ref::Known(s) => Some(s),
            Ref::Pending(_) => None,
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ref::Known(s) => f.write_str(s),
            Ref::Pending(p) => write!(f, "(id of {}, known after apply)", p.what),
        }
    }
}

/// The AWS service an operation goes to (for rate limits, metrics and IAM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Ec2,
    Elbv2,
    ApiGateway,
    /// AWS WAF (v2): web ACL associations.
    Wafv2,
}

/// What an operation acts on, as a typed identity: what per-resource memory (backoff, recreate
/// counts) is keyed by. `Action::resource` is the same thing written for people.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ResourceKey {
    pub kind: ResourceKind,
    /// The id or ARN when known, else what names it before it exists (a name, a VPC pair, a path).
    pub id: String,
}

impl Op {
    /// Whether every id the call needs is known (nothing pending, nothing still to be created).
    pub fn is_ready(&self) -> bool {
        self.refs().iter().all(|r| r.known().is_some())
    }

    /// Whether the call waits for something no action of the plan brings about (an
    /// asynchronous AWS state, or a resource a later observation must show).
    pub fn waits(&self) -> bool {
        self.refs().iter().any(|r| matches!(r, Ref::Pending(Pending { by: None, .. })))
    }
}
