//! The seven services of GB/T 38963 clause 6.
//!
//! [`ServiceName`] is an enum: a service exists as a value only if the standard defines it.
//! The loader checks that `services.toml` names exactly these seven.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::Label;
use super::schema::Node;

/// A service of GB/T 38963.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    /// 6.2 用户健康信息申报.
    DeclareHealth,
    /// 6.3 用户行程申报.
    DeclareTrip,
    /// 6.4 用户健康信息查询.
    QueryHealthInfo,
    /// 6.5 健康码调用申请.
    ApplyCodeAccess,
    /// 6.6 健康码制码请求.
    GenerateCode,
    /// 6.7 健康码验码请求.
    VerifyCode,
    /// 6.8 用户健康信息纠错.
    CorrectHealthInfo,
}

impl ServiceName {
    /// All seven, in clause order.
    pub const ALL: [ServiceName; 7] = [
        Self::DeclareHealth,
        Self::DeclareTrip,
        Self::QueryHealthInfo,
        Self::ApplyCodeAccess,
        Self::GenerateCode,
        Self::VerifyCode,
        Self::CorrectHealthInfo,
    ];

    /// The name on the wire and in the URL path.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DeclareHealth => "declareHealth",
            Self::DeclareTrip => "declareTrip",
            Self::QueryHealthInfo => "queryHealthInfo",
            Self::ApplyCodeAccess => "applyCodeAccess",
            Self::GenerateCode => "generateCode",
            Self::VerifyCode => "verifyCode",
            Self::CorrectHealthInfo => "correctHealthInfo",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of the seven services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a service of GB/T 38963 (declareHealth, declareTrip, queryHealthInfo, applyCodeAccess, generateCode, verifyCode, correctHealthInfo)"
)]
pub struct UnknownService(pub String);

impl FromStr for ServiceName {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| UnknownService(s.to_owned()))
    }
}

/// The class of a service (clause 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// 申报类.
    Declaration,
    /// 查询类.
    Query,
    /// 码服务类.
    Code,
    /// 纠错类.
    Correction,
}

/// Which side of a service a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The caller's business parameters.
    Request,
    /// The service's answer.
    Response,
}

/// One service with its compiled schemas.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Its name.
    pub name: ServiceName,
    /// The clause of GB/T 38963.
    pub clause: String,
    /// Chinese title.
    pub title: String,
    /// English title.
    pub title_en: String,
    /// Its class.
    pub kind: ServiceKind,
    /// Label of the service and its title.
    pub label: Label,
    /// Whether `requestId` makes it idempotent.
    pub idempotent: bool,
    /// Whether it reads or writes personal data.
    pub personal: bool,
    /// Request schema file, relative to `standard/`.
    pub request_file: String,
    /// Response schema file.
    pub response_file: String,
    /// Compiled request schema.
    pub request: Node,
    /// Compiled response schema.
    pub response: Node,
}

impl Service {
    /// The schema of one direction.
    pub fn schema(&self, d: Direction) -> &Node {
        match d {
            Direction::Request => &self.request,
            Direction::Response => &self.response,
        }
    }
}
