//! Which client certificate a check presented, said in its TLS step: the credential's own
//! (which takes precedence), the host's `[[integrations]]` one, or none, so a person reading a
//! passing check knows which certificate the host accepted.

use berth_core::{Step, StepName, StepStatus};
use berth_net::NetClient;
use url::Url;

/// Adds "presented …" to a passing TLS step of an HTTPS check when a client certificate was
/// offered. A refusal names the certificate in its own message (berth-net's finding).
pub(super) fn name_in_tls_step(net: &NetClient, url: Option<&Url>, steps: &mut [Step]) {
    let Some(url) = url.filter(|u| u.scheme() == "https") else { return };
    let Some(which) = net.client_certificate_for(url) else { return };
    for step in steps.iter_mut().filter(|s| s.step == StepName::Tls && s.status == StepStatus::Pass) {
        step.message = format!("{}; presented {which}", step.message);
    }
}
