//! Transport failures as findings: a reqwest error's causes are searched for our resolver's
//! refusal, a rustls error, a timeout or a refused, reset or closed connection.

use crate::error::{NetError, Stage};
use crate::resolve::ResolveError;
use berth_core::Code;
use std::error::Error as StdError;
use std::time::Duration;

/// Every error in a source chain. `io::Error::source()` skips the error it wraps (it returns the
/// inner error's source), which would hide a `rustls::Error` or our `ResolveError`; so for an
/// `io::Error` we step into the wrapped error instead.
pub(crate) fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        out.push(e);
        if out.len() > 32 {
            break;
        }
        cur = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

pub(crate) fn chain_text(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in chain(err) {
        let s = e.to_string();
        if !out.iter().any(|o| o.contains(&s)) {
            out.push(s);
        }
    }
    out
}

/// Turns a reqwest error into a finding by looking through its causes.
pub fn classify(err: &reqwest::Error, stage: Stage, what: &str, limit: Duration) -> NetError {
    let host = err.url().and_then(|u| u.host_str()).unwrap_or("the server").to_owned();
    classify_chain(err, err.is_connect(), err.is_timeout(), stage, &host, what, limit)
}

pub(crate) fn classify_chain(
    err: &(dyn StdError + 'static),
    is_connect: bool,
    is_timeout: bool,
    stage: Stage,
    host: &str,
    what: &str,
    limit: Duration,
) -> NetError {
    let causes = chain(err);
    let details = chain_text(err);
    for e in &causes {
        if let Some(r) = e.downcast_ref::<ResolveError>() {
            return r.to_net_error();
        }
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return tls_error(host, Some(t), &details);
        }
    }
    let text = details.join(": ").to_ascii_lowercase();
    if ["certificate", "unknownissuer", "notvalidforname", "handshake"].iter().any(|k| text.contains(k)) {
        return tls_error(host, None, &details);
    }
    let secs = limit.as_secs_f64();
    if is_timeout {
        return if is_connect {
            NetError::new(
                Stage::Connect,
                Code::Timeout,
                format!("Could not connect to {host} within {secs} s."),
                "The host does not answer: check that it is reachable from the Berth server (firewall, VPN, proxy).",
            )
        } else {
            NetError::new(
                stage,
                Code::Timeout,
                format!("{host} did not finish answering {what} within {secs} s."),
                "The Git server or something between is very slow or holds the connection open; try again, and check \
                 the server and any proxy in between.",
            )
        };
    }
    let io_kind = causes.iter().find_map(|e| e.downcast_ref::<std::io::Error>().map(std::io::Error::kind));
    use std::io::ErrorKind as K;
    let reason = match io_kind {
        Some(K::ConnectionRefused) => Some("refused the connection (nothing is listening on that port)"),
        Some(K::ConnectionReset) => Some("reset the connection"),
        Some(K::ConnectionAborted) => Some("aborted the connection"),
        Some(K::UnexpectedEof) if !is_connect => Some("closed the connection in the middle of the answer"),
        _ if is_connect => Some("could not be connected to"),
        _ => None,
    };
    match reason {
        Some(reason) => NetError::new(
            if is_connect { Stage::Connect } else { stage },
            Code::ConnectFailed,
            format!("{host} {reason}."),
            "Check the host and port in the URL and that the Berth server can reach them (firewall, VPN, proxy).",
        )
        .with_details(details),
        None => NetError::protocol(stage, format!("{what} failed: {}", details.last().map_or("unknown error", |s| s)))
            .with_details(details),
    }
}

fn tls_error(host: &str, err: Option<&rustls::Error>, details: &[String]) -> NetError {
    use rustls::CertificateError as C;
    let text = details.join(": ").to_ascii_lowercase();
    let cert = match err {
        Some(rustls::Error::InvalidCertificate(c)) => Some(c),
        _ => None,
    };
    let (what, remedy) = match cert {
        Some(C::UnknownIssuer) => (UNKNOWN_CA, UNKNOWN_CA_REMEDY),
        Some(C::NotValidForName | C::NotValidForNameContext { .. }) => (WRONG_NAME, WRONG_NAME_REMEDY),
        Some(C::Expired | C::ExpiredContext { .. }) => (EXPIRED, EXPIRED_REMEDY),
        Some(C::NotValidYet | C::NotValidYetContext { .. }) => {
            ("its certificate is not valid yet", "Check the clock of the Berth server and of the Git host.")
        }
        Some(C::Revoked) => ("its certificate has been revoked", "The host must install a new certificate."),
        None if err.is_none() && text.contains("unknownissuer") => (UNKNOWN_CA, UNKNOWN_CA_REMEDY),
        None if err.is_none() && text.contains("notvalidforname") => (WRONG_NAME, WRONG_NAME_REMEDY),
        None if err.is_none() && text.contains("expired") => (EXPIRED, EXPIRED_REMEDY),
        Some(_) => {
            ("its certificate was rejected", "Check the host's certificate; the details say why it was rejected.")
        }
        None if matches!(err, Some(rustls::Error::InvalidMessage(_))) => (
            "the server did not answer with TLS (is it plain HTTP on this port?)",
            "Check the URL's scheme and port: this port seems to speak plain HTTP.",
        ),
        None => (
            "the TLS handshake failed",
            "Check that the URL's port speaks HTTPS and that no proxy interferes; the details say more.",
        ),
    };
    NetError::new(Stage::Tls, Code::TlsFailed, format!("TLS with {host} failed: {what}."), remedy)
        .with_details(details.to_vec())
}

const UNKNOWN_CA: &str = "its certificate is signed by an unknown certificate authority";
const UNKNOWN_CA_REMEDY: &str =
    "If the host uses a private certificate authority, set ca_file (that CA's certificate, PEM) in the host's \
     [[integrations]] entry, or add it to [git] extra_ca_files for every host. Otherwise something intercepts \
     the connection (for example a TLS-inspecting proxy).";
const WRONG_NAME: &str = "its certificate is not valid for the host name";
const WRONG_NAME_REMEDY: &str =
    "Use the host name the certificate was issued for (check the clone URL), or have the host \
     fix its certificate.";
const EXPIRED: &str = "its certificate has expired";
const EXPIRED_REMEDY: &str = "The host must renew its certificate; also check the Berth server's clock.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        // tokio-rustls reports handshake failures as io::Error wrapping rustls::Error; io::Error's
        // source() skips the wrapped error, so the chain walk must step into it.
        let cases = [
            (rustls::CertificateError::UnknownIssuer, "unknown certificate authority"),
            (rustls::CertificateError::NotValidForName, "not valid for the host name"),
            (rustls::CertificateError::Expired, "expired"),
        ];
        for (cert, says) in cases {
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(cert));
            let e = classify_chain(&io, true, false, Stage::Discovery, "git.example", "GET x", Duration::from_secs(1));
            assert_eq!(e.code, Code::TlsFailed);
            assert_eq!(e.stage, Stage::Tls);
            assert!(e.message.contains(says), "{}", e.message);
        }
    }

    #[test]
    fn resolver_errors_are_found_in_the_chain() {
        let inner = ResolveError::Lookup {
            host: "nope.invalid".into(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"),
        };
        let io = std::io::Error::other(inner);
        let e = classify_chain(&io, true, false, Stage::Discovery, "nope.invalid", "GET x", Duration::from_secs(1));
        assert_eq!((e.code, e.stage), (Code::DnsFailed, Stage::Dns));
        assert!(e.message.contains("nope.invalid"));
    }
}
