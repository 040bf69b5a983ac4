//! A failed request judged with what the generic classification cannot know: which way it went
//! (a proxy, whose failures have their own findings) and whether a client certificate was
//! offered (a TLS alert from the host about certificates is then about that one).

use crate::classify::{chain, classify};
use crate::error::{NetError, Stage};
use crate::issuer::presented_issuer;
use crate::proxy::{open_tunnel, proxy_addresses, proxy_auth_failed, proxy_connect_failed, proxy_refused, via};
use crate::resolve::resolve_allowed;
use crate::route::Route;
use crate::urls::authority;
use crate::NetClient;
use berth_core::Code;
use std::error::Error as StdError;
use std::time::Duration;
use url::Url;

// hyper-util's tunnel errors are not exported; these are their texts (hyper-util 0.1's
// `TunnelError` Display), checked against a real proxy
// (`tests/ls_refs/proxied.rs` in berth-git and `outbound.rs` in the end-to-end suite).
const TUNNEL_AUTH: &str = "tunnel error: proxy authorization required";
const TUNNEL_REFUSED: &str = "tunnel error: unsuccessful";
const TUNNEL_EOF: &str = "tunnel error: unexpected end of file";

impl NetClient {
    pub(crate) async fn transport_error(
        &self,
        err: &reqwest::Error,
        route: &Route<'_>,
        url: &Url,
        stage: Stage,
        what: &str,
        limit: Duration,
    ) -> NetError {
        let host = authority(url);
        let offered = match self.credential_certificate() {
            Some(c) => Offered::Credential(c),
            None if route.client_certificate => Offered::Host,
            None => Offered::None,
        };
        if let Some(e) = client_certificate_finding(err, &host, offered) {
            return with_via(e, route);
        }
        let Some(proxy) = route.proxy else {
            let e = classify(err, stage, what, limit);
            return self.name_unknown_issuer(e, err, route, url, limit).await;
        };
        let texts: Vec<String> = chain(err).iter().map(ToString::to_string).collect();
        if texts.iter().any(|t| t == TUNNEL_AUTH) {
            return proxy_auth_failed(proxy, 407);
        }
        if texts.iter().any(|t| t == TUNNEL_REFUSED || t == TUNNEL_EOF) {
            // reqwest keeps neither the status nor the words of a refused CONNECT: ask once more
            // to read them.
            let name = url.host_str().unwrap_or_default();
            let name = name.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(name);
            let port = url.port_or_known_default().unwrap_or(443);
            let asked = match proxy_addresses(proxy, self.config().lookup.as_ref()).await {
                Ok(addrs) => open_tunnel(proxy, &addrs, name, port, limit).await,
                Err(e) => Err(e),
            };
            return match asked {
                Ok((_, _, answer)) if matches!(answer.status, 401 | 407) => proxy_auth_failed(proxy, answer.status),
                Ok((_, _, answer)) if answer.status != 200 => proxy_refused(proxy, name, port, &answer),
                Ok(_) => NetError::new(
                    Stage::Connect,
                    Code::ProxyRefused,
                    format!(
                        "The proxy {} refused to open a tunnel to {host}, then opened one when asked again.",
                        proxy.shown()
                    ),
                    "The proxy refuses some tunnels: check its limits (connections, ports) and its log.",
                )
                .with_details(vec![via(proxy)]),
                Err(e) => e,
            };
        }
        let mut e = classify(err, stage, what, limit);
        if e.code == Code::DnsFailed
            || (e.stage == Stage::Connect && matches!(e.code, Code::ConnectFailed | Code::Timeout))
        {
            // Through a proxy the only connection reqwest opens itself is the one to the proxy.
            let why = e.details.last().cloned().unwrap_or_else(|| e.message.clone());
            return proxy_connect_failed(proxy, why.trim_end_matches('.').to_owned());
        }
        e.details.insert(0, via(proxy));
        self.name_unknown_issuer(e, err, route, url, limit).await
    }

    /// Adds the issuer's name to an unknown-CA finding, read from a second handshake the same
    /// way (directly under the policy, or through the proxy's tunnel).
    async fn name_unknown_issuer(
        &self,
        mut e: NetError,
        err: &reqwest::Error,
        route: &Route<'_>,
        url: &Url,
        limit: Duration,
    ) -> NetError {
        let unknown = chain(err).iter().any(|c| {
            matches!(
                c.downcast_ref::<rustls::Error>(),
                Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
            )
        });
        if !unknown {
            return e;
        }
        let name = url.host_str().unwrap_or_default();
        let name = name.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(name).to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let stream = match route.proxy {
            Some(proxy) => match proxy_addresses(proxy, self.config().lookup.as_ref()).await {
                Ok(addrs) => match open_tunnel(proxy, &addrs, &name, port, limit).await {
                    Ok((stream, _, answer)) if answer.status == 200 => Some(stream),
                    _ => None,
                },
                Err(_) => None,
            },
            None => match resolve_allowed(self.policy(), self.config().lookup.as_ref(), &name, port).await {
                Ok(r) => match r.allowed.first() {
                    Some(ip) => tokio::time::timeout(limit, tokio::net::TcpStream::connect((*ip, port)))
                        .await
                        .ok()
                        .and_then(Result::ok),
                    None => None,
                },
                Err(_) => None,
            },
        };
        let Some(stream) = stream else { return e };
        if let Some(issuer) = presented_issuer(stream, &name, limit).await {
            let host = authority(url);
            e.message = format!("{} (issued by {issuer}).", e.message.trim_end_matches('.'));
            e.remedy = format!(
                "If {host} uses a private certificate authority, set ca_file in the [[integrations]] entry for {host} \
                 to the certificate (PEM) of {issuer}. Otherwise something intercepts the connection (for example a \
                 TLS-inspecting proxy)."
            );
            e.details.push(format!("issuer: {issuer}"));
        }
        e
    }
}

fn with_via(mut e: NetError, route: &Route<'_>) -> NetError {
    if let Some(p) = route.proxy {
        e.details.insert(0, via(p));
    }
    e
}

/// Which client certificate a request offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offered<'a> {
    None,
    /// The `[[integrations]]` entry's.
    Host,
    /// The credential's own, as findings name it.
    Credential(&'a str),
}

/// A TLS alert from the host about certificates, after Berth offered one or none. With TLS 1.3
/// it arrives after the handshake, when the answer is read, so it is looked for in every
/// request's failure.
pub(crate) fn client_certificate_finding(
    err: &(dyn StdError + 'static),
    host: &str,
    offered: Offered<'_>,
) -> Option<NetError> {
    use rustls::AlertDescription as A;
    let alert = chain(err).iter().find_map(|e| match e.downcast_ref::<rustls::Error>() {
        Some(rustls::Error::AlertReceived(a)) => Some(*a),
        _ => None,
    })?;
    let about_certificates = matches!(
        alert,
        A::CertificateRequired
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied
            | A::DecryptError
    );
    let alert_text = format!("TLS alert: {alert:?}");
    if offered == Offered::None && matches!(alert, A::CertificateRequired | A::BadCertificate | A::CertificateUnknown) {
        return Some(
            NetError::new(
                Stage::Tls,
                Code::ClientCertificateRequired,
                format!("{host} demands a client certificate and Berth has none for it."),
                format!(
                    "Set client_certificate and client_key in the [[integrations]] entry for {host}, or give the \
                     credential its own client certificate and key (a certificate the host's administrators issued or \
                     accept)."
                ),
            )
            .with_details(vec![alert_text]),
        );
    }
    if offered != Offered::None && about_certificates {
        let why = match alert {
            A::UnknownCA => "it does not trust the authority that issued it",
            A::CertificateExpired => "it has expired",
            A::CertificateRevoked => "it has been revoked",
            A::CertificateRequired => "it was not accepted as a certificate",
            A::AccessDenied => "the certificate is valid but not allowed here",
            A::DecryptError => "the key does not match the certificate",
            _ => "the host rejected it",
        };
        let (which, fix) = match offered {
            Offered::Credential(c) => {
                (c.to_owned(), "Replace the credential's client certificate and key with".to_owned())
            }
            _ => (
                "the client certificate Berth presented".to_owned(),
                format!("Check the client_certificate and client_key of the [[integrations]] entry for {host}: use"),
            ),
        };
        return Some(
            NetError::new(
                Stage::Tls,
                Code::ClientCertificateRefused,
                format!("{host} refused {which}: {why}."),
                format!("{fix} a certificate from an authority the host trusts, not expired, matching its key."),
            )
            .with_details(vec![alert_text]),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(a: rustls::AlertDescription) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, rustls::Error::AlertReceived(a))
    }

    #[test]
    fn certificate_alerts_name_the_client_certificate() {
        use rustls::AlertDescription as A;
        let e = client_certificate_finding(&alert(A::CertificateRequired), "git.example:8443", Offered::None);
        assert_eq!(e.map(|e| (e.code, e.stage)), Some((Code::ClientCertificateRequired, Stage::Tls)));
        let e = client_certificate_finding(&alert(A::UnknownCA), "git.example:8443", Offered::Host);
        assert!(e.is_some_and(|e| e.code == Code::ClientCertificateRefused && e.message.contains("does not trust")));
        let mine = Offered::Credential("the client certificate of credential \"ci\" (CN=jo)");
        let e = client_certificate_finding(&alert(A::UnknownCA), "git.example:8443", mine);
        assert!(e.is_some_and(|e| e.message.contains("credential \"ci\"") && e.remedy.contains("credential's")));
        assert!(client_certificate_finding(&alert(A::HandshakeFailure), "h", Offered::None).is_none());
        assert!(client_certificate_finding(&alert(A::ProtocolVersion), "h", Offered::Host).is_none());
    }
}
