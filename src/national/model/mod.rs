//! The typed national model.
//!
//! - Records of GB/T 38962: one struct per data-element group ([`BasicInfo`] 01,
//!   [`HealthInfo`] 02, [`TripInfo`] 03, [`CodeInfo`] 04), one field per element.
//! - Business parameters of the seven services of GB/T 38963, request and response.
//!
//! Field names are the elements' JSON keys; unknown fields are refused. Coded values stay
//! strings here and are checked against the standard's tables by [`super::validate`], so a
//! table can grow without a code change. A drift test (`tests.rs`) proves that every element
//! and every schema property of `standard/` has its field here, and the reverse.

macro_rules! model {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(test, derive(schemars::JsonSchema))]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }
    };
}

// Records of GB/T 38962 -----------------------------------------------------------------

model! {
    /// Group 01, 个人基本信息.
    pub struct BasicInfo {
        /// PHIC.01.001 姓名.
        #[serde(skip_serializing_if = "Option::is_none")] name: Option<String>,
        /// PHIC.01.002 性别 (GB/T 2261.1).
        #[serde(skip_serializing_if = "Option::is_none")] sex: Option<String>,
        /// PHIC.01.003 国籍 (GB/T 2659).
        #[serde(skip_serializing_if = "Option::is_none")] nationality: Option<String>,
        /// PHIC.01.004 证件类型.
        #[serde(skip_serializing_if = "Option::is_none")] id_type: Option<String>,
        /// PHIC.01.005 证件号码.
        #[serde(skip_serializing_if = "Option::is_none")] id_no: Option<String>,
        /// PHIC.01.006 户籍区划 (GB/T 2260).
        #[serde(skip_serializing_if = "Option::is_none")] household_region: Option<String>,
        /// PHIC.01.007 区划内详细地址.
        #[serde(skip_serializing_if = "Option::is_none")] address: Option<String>,
        /// PHIC.01.008 联系电话.
        #[serde(skip_serializing_if = "Option::is_none")] phone: Option<String>,
        /// PHIC.01.009 基础病史 (`^`-separated).
        #[serde(skip_serializing_if = "Option::is_none")] medical_history: Option<String>,
        /// PHIC.01.010 出生日期.
        #[serde(skip_serializing_if = "Option::is_none")] birth_date: Option<String>,
    }
}

model! {
    /// Group 02, 个人健康信息.
    pub struct HealthInfo {
        /// PHIC.02.001 体温 (°C).
        #[serde(skip_serializing_if = "Option::is_none")] temperature: Option<f64>,
        /// PHIC.02.002 当前症状 (`^`-separated).
        #[serde(skip_serializing_if = "Option::is_none")] symptoms: Option<String>,
        /// PHIC.02.003 高风险地区旅居史.
        #[serde(skip_serializing_if = "Option::is_none")] high_risk_stay: Option<String>,
        /// PHIC.02.013 高风险地区列表.
        #[serde(skip_serializing_if = "Option::is_none")] high_risk_regions: Option<Vec<String>>,
        /// PHIC.02.004 接触史.
        #[serde(skip_serializing_if = "Option::is_none")] contact_history: Option<String>,
        /// PHIC.02.005 申报时间.
        #[serde(skip_serializing_if = "Option::is_none")] declare_time: Option<String>,
        /// PHIC.02.006 申报所在区划.
        #[serde(skip_serializing_if = "Option::is_none")] declare_region: Option<String>,
        /// PHIC.02.007 核酸检测结果.
        #[serde(skip_serializing_if = "Option::is_none")] nucleic_result: Option<String>,
        /// PHIC.02.008 核酸采样/检测时间.
        #[serde(skip_serializing_if = "Option::is_none")] nucleic_time: Option<String>,
        /// PHIC.02.009 检测机构.
        #[serde(skip_serializing_if = "Option::is_none")] nucleic_org: Option<String>,
        /// PHIC.02.010 疫苗接种剂次.
        #[serde(skip_serializing_if = "Option::is_none")] vaccine_doses: Option<u8>,
        /// PHIC.02.011 最近接种日期.
        #[serde(skip_serializing_if = "Option::is_none")] vaccine_last_date: Option<String>,
        /// PHIC.02.012 抗体检测结果.
        #[serde(skip_serializing_if = "Option::is_none")] antibody_result: Option<String>,
    }
}

model! {
    /// Group 03, 行程信息: one trip.
    pub struct TripInfo {
        /// PHIC.03.001 出发地区划.
        #[serde(skip_serializing_if = "Option::is_none")] from_region: Option<String>,
        /// PHIC.03.008 出发国家/地区.
        #[serde(skip_serializing_if = "Option::is_none")] from_country: Option<String>,
        /// PHIC.03.002 目的地区划.
        #[serde(skip_serializing_if = "Option::is_none")] to_region: Option<String>,
        /// PHIC.03.003 出行方式.
        #[serde(skip_serializing_if = "Option::is_none")] transport: Option<String>,
        /// PHIC.03.004 车次/航班号.
        #[serde(skip_serializing_if = "Option::is_none")] transport_no: Option<String>,
        /// PHIC.03.005 出发时间.
        #[serde(skip_serializing_if = "Option::is_none")] depart_time: Option<String>,
        /// PHIC.03.007 到达时间.
        #[serde(skip_serializing_if = "Option::is_none")] arrive_time: Option<String>,
        /// PHIC.03.006 14天内途经中高风险地区.
        #[serde(skip_serializing_if = "Option::is_none")] risk_area_visited: Option<String>,
    }
}

model! {
    /// Group 04, 健康码信息.
    pub struct CodeInfo {
        /// PHIC.04.001 健康码标识.
        #[serde(skip_serializing_if = "Option::is_none")] code_id: Option<String>,
        /// PHIC.04.002 健康码状态(颜色).
        #[serde(skip_serializing_if = "Option::is_none")] code_color: Option<String>,
        /// PHIC.04.003 赋码时间/更新时间.
        #[serde(skip_serializing_if = "Option::is_none")] update_time: Option<String>,
        /// PHIC.04.004 有效期至.
        #[serde(skip_serializing_if = "Option::is_none")] expire_time: Option<String>,
        /// PHIC.04.005 发码机构.
        #[serde(skip_serializing_if = "Option::is_none")] issuer: Option<String>,
        /// PHIC.04.006 发码区划.
        #[serde(skip_serializing_if = "Option::is_none")] issuer_region: Option<String>,
        /// PHIC.04.007 赋码原因.
        #[serde(skip_serializing_if = "Option::is_none")] color_reason: Option<String>,
        /// PHIC.04.008 一体化平台码标识.
        #[serde(skip_serializing_if = "Option::is_none")] national_code_id: Option<String>,
        /// PHIC.04.009 码内容.
        #[serde(skip_serializing_if = "Option::is_none")] code_content: Option<String>,
        /// PHIC.04.010 码制.
        #[serde(skip_serializing_if = "Option::is_none")] symbology: Option<String>,
        /// PHIC.04.011 人员类别.
        #[serde(skip_serializing_if = "Option::is_none")] personnel_type: Option<String>,
    }
}

// Shared blocks (schemas/common.json) ----------------------------------------------------

model! {
    /// The identity block `user`.
    pub struct User {
        /// 证件类型.
        id_type: String,
        /// 证件号码.
        id_no: String,
        /// 姓名.
        name: String,
        /// 联系电话.
        #[serde(skip_serializing_if = "Option::is_none")] phone: Option<String>,
        /// 国籍.
        #[serde(skip_serializing_if = "Option::is_none")] nationality: Option<String>,
    }
}

model! {
    /// The verifying party of a `verifyCode` call.
    pub struct Verifier {
        /// Organisation name.
        org_name: String,
        /// Unified social credit code.
        #[serde(skip_serializing_if = "Option::is_none")] org_code: Option<String>,
        /// Operator name.
        #[serde(skip_serializing_if = "Option::is_none")] operator_name: Option<String>,
        /// Operator phone.
        #[serde(skip_serializing_if = "Option::is_none")] operator_phone: Option<String>,
        /// Device id.
        device_id: String,
    }
}

model! {
    /// Where a verification happened.
    pub struct Location {
        /// GB/T 2260 code.
        region: String,
        /// Address.
        #[serde(skip_serializing_if = "Option::is_none")] address: Option<String>,
        /// Longitude.
        #[serde(skip_serializing_if = "Option::is_none")] lng: Option<f64>,
        /// Latitude.
        #[serde(skip_serializing_if = "Option::is_none")] lat: Option<f64>,
    }
}

model! {
    /// A person as a non-holder sees them: masked.
    pub struct Person {
        /// Masked name.
        name_masked: String,
        /// Masked ID number.
        id_no_masked: String,
        /// ID type.
        #[serde(skip_serializing_if = "Option::is_none")] id_type: Option<String>,
    }
}

model! {
    /// One declared trip.
    pub struct Trip {
        /// From (GB/T 2260).
        from_region: String,
        /// From abroad (GB/T 2659).
        #[serde(skip_serializing_if = "Option::is_none")] from_country: Option<String>,
        /// To (GB/T 2260).
        to_region: String,
        /// Transport mode.
        transport: String,
        /// Train or flight number.
        #[serde(skip_serializing_if = "Option::is_none")] transport_no: Option<String>,
        /// Departure time.
        depart_time: String,
        /// Arrival time.
        #[serde(skip_serializing_if = "Option::is_none")] arrive_time: Option<String>,
    }
}

model! {
    /// A region's status for a person, in a cross-region answer.
    pub struct RegionStatus {
        /// The region (GB/T 2260).
        region: String,
        /// Its colour for the person.
        #[serde(skip_serializing_if = "Option::is_none")] code_color: Option<String>,
        /// When that colour was set.
        #[serde(skip_serializing_if = "Option::is_none")] update_time: Option<String>,
        /// Whether the region answered.
        available: bool,
    }
}

mod services;
pub use services::*;

#[cfg(test)]
mod tests;
