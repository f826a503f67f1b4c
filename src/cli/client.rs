//! `hutong client <service> --body FILE --as PROFILE`: one signed call to a gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::client::GatewayClient;
use crate::standard::ServiceName;

/// Arguments of `hutong client`.
#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    /// The service to call.
    pub service: ServiceName,
    /// The business content (JSON), or - for standard input.
    #[arg(long)]
    pub body: String,
    /// The caller's profile (TOML): gateway URL, appId, keys, CA, client certificate, token
    /// file. `hutong serve` writes one per development client under data/clients/.
    #[arg(long = "as", value_name = "PROFILE")]
    pub profile: PathBuf,
}

pub(super) fn run(a: &ClientArgs) -> anyhow::Result<ExitCode> {
    let raw = super::read_input(&a.body, crate::national::validate::MAX_MESSAGE_BYTES)?;
    let biz: Value = serde_json::from_slice(&raw).context("the body is not JSON")?;
    let client = GatewayClient::from_profile_file(&a.profile)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let x = rt.block_on(client.call(a.service, &biz))?;
    let Some(env) = &x.envelope else {
        say!(
            "HTTP {}: the answer did not verify: {}",
            x.status,
            x.open_error.as_deref().unwrap_or("?")
        );
        return Ok(ExitCode::from(3));
    };
    let out = json!({
        "http": x.status,
        "code": env.code,
        "msg": env.msg,
        "requestId": env.request_id,
        "signType": env.sign_type.as_str(),
        "bizContent": x.biz,
    });
    say!("{}", serde_json::to_string_pretty(&out)?);
    let ok = env.code == "0" || env.code == "4001";
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
