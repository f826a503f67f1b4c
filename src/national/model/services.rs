//! Business parameters of the seven services (GB/T 38963 clause 6), request and response.

use super::{Location, Person, RegionStatus, Trip, User, Verifier};

model! {
    /// 6.2 `declareHealth` request.
    pub struct DeclareHealthRequest {
        /// Identity.
        user: User,
        /// 户籍区划.
        #[serde(skip_serializing_if = "Option::is_none")] household_region: Option<String>,
        /// 区划内详细地址.
        #[serde(skip_serializing_if = "Option::is_none")] address: Option<String>,
        /// 基础病史.
        #[serde(skip_serializing_if = "Option::is_none")] medical_history: Option<String>,
        /// 体温.
        #[serde(skip_serializing_if = "Option::is_none")] temperature: Option<f64>,
        /// 当前症状.
        symptoms: String,
        /// 高风险地区旅居史.
        high_risk_stay: String,
        /// 高风险地区列表.
        #[serde(skip_serializing_if = "Option::is_none")] high_risk_regions: Option<Vec<String>>,
        /// 接触史.
        contact_history: String,
        /// 申报所在区划.
        declare_region: String,
        /// 申报时间.
        declare_time: String,
        /// Pass-through extension data.
        #[serde(skip_serializing_if = "Option::is_none")] biz_ext_data: Option<String>,
    }
}

model! {
    /// 6.2 `declareHealth` response.
    pub struct DeclareHealthResponse {
        /// Declaration id.
        declare_id: String,
        /// Colour after re-evaluation.
        code_color: String,
        /// When the colour was set.
        update_time: String,
    }
}

model! {
    /// 6.3 `declareTrip` request.
    pub struct DeclareTripRequest {
        /// Identity.
        user: User,
        /// Trips.
        trips: Vec<Trip>,
        /// 申报时间.
        declare_time: String,
    }
}

model! {
    /// 6.3 `declareTrip` response.
    pub struct DeclareTripResponse {
        /// Trip declaration id.
        trip_declare_id: String,
        /// Colour after re-evaluation.
        code_color: String,
        /// Whether a medium- or high-risk area was visited.
        risk_area_visited: String,
    }
}

model! {
    /// 6.4 `queryHealthInfo` request.
    pub struct QueryHealthInfoRequest {
        /// Ticket from `verifyCode`.
        #[serde(skip_serializing_if = "Option::is_none")] biz_ext_data: Option<String>,
        /// Identity, with `authCode`.
        #[serde(skip_serializing_if = "Option::is_none")] user: Option<User>,
        /// The holder's authorisation.
        #[serde(skip_serializing_if = "Option::is_none")] auth_code: Option<String>,
        /// What to return.
        #[serde(skip_serializing_if = "Option::is_none")] scope: Option<Vec<String>>,
    }
}

model! {
    /// The `code` block of a query answer.
    pub struct QueryCode {
        /// Colour.
        code_color: String,
        /// When it was set.
        update_time: String,
        /// Why (only if authorised).
        #[serde(skip_serializing_if = "Option::is_none")] color_reason: Option<String>,
        /// Issuing region.
        #[serde(skip_serializing_if = "Option::is_none")] issuer_region: Option<String>,
    }
}

model! {
    /// The `health` block of a query answer.
    pub struct QueryHealth {
        /// 体温.
        #[serde(skip_serializing_if = "Option::is_none")] temperature: Option<f64>,
        /// 当前症状.
        #[serde(skip_serializing_if = "Option::is_none")] symptoms: Option<String>,
        /// 高风险地区旅居史.
        #[serde(skip_serializing_if = "Option::is_none")] high_risk_stay: Option<String>,
        /// 接触史.
        #[serde(skip_serializing_if = "Option::is_none")] contact_history: Option<String>,
        /// 申报时间.
        declare_time: String,
    }
}

model! {
    /// The `nucleic` block of a query answer.
    pub struct QueryNucleic {
        /// Result.
        nucleic_result: String,
        /// Sampling or test time.
        #[serde(skip_serializing_if = "Option::is_none")] nucleic_time: Option<String>,
        /// Testing organisation.
        #[serde(skip_serializing_if = "Option::is_none")] nucleic_org: Option<String>,
    }
}

model! {
    /// The `vaccine` block of a query answer.
    pub struct QueryVaccine {
        /// Doses.
        vaccine_doses: u8,
        /// Last dose date.
        #[serde(skip_serializing_if = "Option::is_none")] vaccine_last_date: Option<String>,
    }
}

model! {
    /// 6.4 `queryHealthInfo` response.
    pub struct QueryHealthInfoResponse {
        /// The person, masked.
        person: Person,
        /// Code status.
        #[serde(skip_serializing_if = "Option::is_none")] code: Option<QueryCode>,
        /// Health declaration.
        #[serde(skip_serializing_if = "Option::is_none")] health: Option<QueryHealth>,
        /// Nucleic-acid test.
        #[serde(skip_serializing_if = "Option::is_none")] nucleic: Option<QueryNucleic>,
        /// Vaccination.
        #[serde(skip_serializing_if = "Option::is_none")] vaccine: Option<QueryVaccine>,
        /// Per-region status.
        #[serde(skip_serializing_if = "Option::is_none")] region_status: Option<Vec<RegionStatus>>,
        /// Whether some region did not answer.
        #[serde(skip_serializing_if = "Option::is_none")] partial: Option<bool>,
        /// Regions that did not answer.
        #[serde(skip_serializing_if = "Option::is_none")] unavailable_regions: Option<Vec<String>>,
    }
}

model! {
    /// 6.5 `applyCodeAccess` request.
    pub struct ApplyCodeAccessRequest {
        /// Identity.
        user: User,
        /// FACE, SMS or OAUTH.
        auth_type: String,
        /// Proof of consent.
        auth_proof: String,
        /// Scene.
        #[serde(skip_serializing_if = "Option::is_none")] scene: Option<String>,
        /// Jump-back URL.
        #[serde(skip_serializing_if = "Option::is_none")] callback_url: Option<String>,
    }
}

model! {
    /// 6.5 `applyCodeAccess` response.
    pub struct ApplyCodeAccessResponse {
        /// Short-lived authorisation.
        auth_code: String,
        /// Issuer-scoped user id.
        user_token: String,
        /// Seconds.
        expires_in: u32,
        /// Code page.
        #[serde(skip_serializing_if = "Option::is_none")] code_page_url: Option<String>,
    }
}

model! {
    /// 6.6 `generateCode` request.
    pub struct GenerateCodeRequest {
        /// Issuer-scoped user id.
        #[serde(skip_serializing_if = "Option::is_none")] user_token: Option<String>,
        /// Authorisation.
        #[serde(skip_serializing_if = "Option::is_none")] auth_code: Option<String>,
        /// QR or GM.
        #[serde(skip_serializing_if = "Option::is_none")] symbology: Option<String>,
        /// CONTENT, IMAGE or MATRIX.
        #[serde(skip_serializing_if = "Option::is_none")] output: Option<String>,
        /// Pixels.
        #[serde(skip_serializing_if = "Option::is_none")] size: Option<u32>,
        /// Embed the national code id.
        #[serde(skip_serializing_if = "Option::is_none")] with_national: Option<bool>,
    }
}

model! {
    /// 6.6 `generateCode` response.
    pub struct GenerateCodeResponse {
        /// URL or token.
        code_content: String,
        /// PNG, Base64.
        #[serde(skip_serializing_if = "Option::is_none")] code_image: Option<String>,
        /// Bit matrix.
        #[serde(skip_serializing_if = "Option::is_none")] matrix: Option<String>,
        /// Matrix width.
        #[serde(skip_serializing_if = "Option::is_none")] width: Option<u32>,
        /// Colour.
        code_color: String,
        /// Display colour.
        #[serde(skip_serializing_if = "Option::is_none")] color_hex: Option<String>,
        /// Masked name.
        #[serde(skip_serializing_if = "Option::is_none")] name_masked: Option<String>,
        /// Masked ID number.
        #[serde(skip_serializing_if = "Option::is_none")] id_no_masked: Option<String>,
        /// When the colour was set.
        update_time: String,
        /// Valid until.
        #[serde(skip_serializing_if = "Option::is_none")] expire_time: Option<String>,
        /// Seconds.
        #[serde(skip_serializing_if = "Option::is_none")] refresh_interval: Option<u32>,
    }
}

model! {
    /// 6.7 `verifyCode` request.
    pub struct VerifyCodeRequest {
        /// The raw scanned content.
        code_content: String,
        /// Who verifies.
        verifier: Verifier,
        /// Where.
        #[serde(skip_serializing_if = "Option::is_none")] location: Option<Location>,
        /// Scene.
        #[serde(skip_serializing_if = "Option::is_none")] scene: Option<String>,
        /// Temperature measured on site.
        #[serde(skip_serializing_if = "Option::is_none")] temperature: Option<f64>,
        /// Pass-through extension data.
        #[serde(skip_serializing_if = "Option::is_none")] biz_ext_data: Option<String>,
    }
}

model! {
    /// 6.7 `verifyCode` response.
    pub struct VerifyCodeResponse {
        /// PASS, WARN or DENY.
        verify_result: String,
        /// Colour.
        code_color: String,
        /// Masked name.
        #[serde(skip_serializing_if = "Option::is_none")] name_masked: Option<String>,
        /// Masked ID number.
        #[serde(skip_serializing_if = "Option::is_none")] id_no_masked: Option<String>,
        /// When the colour was set.
        update_time: String,
        /// Issuer id.
        #[serde(skip_serializing_if = "Option::is_none")] issuer: Option<String>,
        /// Issuing region.
        #[serde(skip_serializing_if = "Option::is_none")] issuer_region: Option<String>,
        /// National code id.
        #[serde(skip_serializing_if = "Option::is_none")] national_code_id: Option<String>,
        /// Ticket for `queryHealthInfo`.
        #[serde(skip_serializing_if = "Option::is_none")] biz_ext_data: Option<String>,
        /// Ticket lifetime, seconds.
        #[serde(skip_serializing_if = "Option::is_none")] ticket_expires_in: Option<u32>,
        /// 通勤人员标识: a registered cross-boundary commuter (Beijing rules) [P].
        #[serde(skip_serializing_if = "Option::is_none")] commuter: Option<bool>,
    }
}

model! {
    /// One disputed item of a correction.
    pub struct CorrectionItem {
        /// Element id or JSON key.
        element: String,
        /// The value now held.
        #[serde(skip_serializing_if = "Option::is_none")] current_value: Option<String>,
        /// The value claimed.
        claimed_value: String,
    }
}

model! {
    /// Evidence attached to a correction.
    pub struct Evidence {
        /// Kind of evidence.
        #[serde(rename = "type")] kind: String,
        /// File name.
        #[serde(skip_serializing_if = "Option::is_none")] file_name: Option<String>,
        /// Base64 content.
        #[serde(skip_serializing_if = "Option::is_none")] content: Option<String>,
        /// Or a URL.
        #[serde(skip_serializing_if = "Option::is_none")] url: Option<String>,
    }
}

model! {
    /// 6.8 `correctHealthInfo` request.
    pub struct CorrectHealthInfoRequest {
        /// Identity.
        user: User,
        /// Authorisation.
        auth_code: String,
        /// What is disputed.
        items: Vec<CorrectionItem>,
        /// Why.
        reason: String,
        /// Evidence.
        #[serde(skip_serializing_if = "Option::is_none")] evidence: Option<Vec<Evidence>>,
        /// Contact phone.
        #[serde(skip_serializing_if = "Option::is_none")] contact_phone: Option<String>,
    }
}

model! {
    /// 6.8 `correctHealthInfo` response.
    pub struct CorrectHealthInfoResponse {
        /// Ticket id.
        ticket_id: String,
        /// ACCEPTED, PROCESSING, DONE or REJECTED.
        status: String,
        /// Expected completion.
        #[serde(skip_serializing_if = "Option::is_none")] expected_time: Option<String>,
    }
}
