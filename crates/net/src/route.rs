//! Which way a request goes: directly or through a proxy, and with which TLS set-up. One
//! reqwest client per distinct set-up (the default; each host with its own CA, client
//! certificate or proxy), built once when the [`NetClient`] is made, so a bad PEM file is an
//! error at start-up and hosts without settings of their own share one pool.
//!
//! Through a proxy the destination is resolved by Berth before the proxy is asked, and every
//! address the name resolves to must pass the network policy: the proxy may connect to any of
//! them, so one forbidden address refuses the name (`destination_forbidden`). A direct request
//! keeps the resolver's rule (forbidden addresses are skipped, the rest tried).

use crate::classify::chain_text;
use crate::error::{NetError, Stage};
use crate::hosts::{ClientIdentity, HostSettings, ProxyChoice, ProxyRoute};
use crate::proxy::{via, Proxy};
use crate::resolve::{judge_every, lookup_all, PolicyResolver, ProxyHostResolver};
use crate::{NetClient, NetConfig};
use berth_core::Code;
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;

/// The clients of one set-up: direct, and through its proxy when one applies.
#[derive(Clone)]
pub(crate) struct Lane {
    settings: Option<HostSettings>,
    direct: reqwest::Client,
    proxied: Option<(ProxyRoute, reqwest::Client)>,
}

/// Every lane; the first is for hosts without settings of their own.
pub(crate) struct Lanes {
    lanes: Vec<Lane>,
}

/// How one request goes.
pub(crate) struct Route<'a> {
    pub client: &'a reqwest::Client,
    pub proxy: Option<&'a Proxy>,
    /// Whether a client certificate is offered to the host.
    pub client_certificate: bool,
    /// Through a proxy: every address of the destination (Berth resolved it) and how long that took.
    pub resolved: Vec<std::net::IpAddr>,
    pub dns: Duration,
}

impl Lanes {
    /// `credential`: a credential's own client certificate, presented to every host in place of
    /// the host's own (every lane then has a TLS set-up of its own).
    pub(crate) fn build(cfg: &NetConfig, credential: Option<&ClientIdentity>) -> Result<Lanes, NetError> {
        let default =
            credential.map(|id| HostSettings { client_identity: Some(id.clone()), ..HostSettings::default() });
        let direct = build_client(cfg, default.as_ref(), None)?;
        let proxied = match &cfg.proxy {
            Some(route) => Some((route.clone(), build_client(cfg, default.as_ref(), Some(&route.proxy))?)),
            None => None,
        };
        let mut lanes = vec![Lane { settings: None, direct: direct.clone(), proxied: proxied.clone() }];
        for s in &cfg.hosts {
            let mut s = s.clone();
            if let Some(id) = credential {
                s.client_identity = Some(id.clone());
            }
            let s = &s;
            let own_direct = if s.has_tls() { build_client(cfg, Some(s), None)? } else { direct.clone() };
            let own_proxied = match &s.proxy {
                ProxyChoice::Direct => None,
                ProxyChoice::Via(route) => Some((route.clone(), build_client(cfg, Some(s), Some(&route.proxy))?)),
                ProxyChoice::Inherit => match (&cfg.proxy, &proxied) {
                    (Some(route), Some(_)) if s.has_tls() => {
                        Some((route.clone(), build_client(cfg, Some(s), Some(&route.proxy))?))
                    }
                    _ => proxied.clone(),
                },
            };
            lanes.push(Lane { settings: Some(s.clone()), direct: own_direct, proxied: own_proxied });
        }
        Ok(Lanes { lanes })
    }

    /// The `[[integrations]]` host whose own client certificate requests to `url` present.
    pub(crate) fn host_identity(&self, url: &Url) -> Option<&str> {
        let s = self.lane_for(url).settings.as_ref()?;
        s.client_identity.as_ref().map(|_| s.host.as_str())
    }

    fn lane_for(&self, url: &Url) -> &Lane {
        self.lanes
            .iter()
            .skip(1)
            .find(|l| l.settings.as_ref().is_some_and(|s| s.matches(url)))
            .unwrap_or(&self.lanes[0])
    }
}

impl NetClient {
    /// Chooses the way for `url`. Through a proxy, resolves the destination and applies the
    /// network policy to every address first.
    pub(crate) async fn route(&self, url: &Url) -> Result<Route<'_>, NetError> {
        let lane = self.lanes().lane_for(url);
        let client_certificate = self.credential_certificate().is_some()
            || lane.settings.as_ref().is_some_and(|s| s.client_identity.is_some());
        let direct =
            Route { client: &lane.direct, proxy: None, client_certificate, resolved: Vec::new(), dns: Duration::ZERO };
        let Some((route, client)) = &lane.proxied else { return Ok(direct) };
        let host = url.host_str().unwrap_or_default();
        if route.no_proxy.matches_host(host) {
            return Ok(direct);
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let cfg = self.config();
        let started = Instant::now();
        let lookup = lookup_all(cfg.lookup.as_ref(), host, port);
        let (all, literal) = match tokio::time::timeout(cfg.request_timeout, lookup).await {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                let mut e = e.to_net_error();
                e.remedy.push_str(
                    " Through a proxy Berth still resolves the host itself, so that the network policy can judge \
                     where the proxy will connect: the Berth server's DNS must resolve it.",
                );
                e.details.insert(0, via(&route.proxy));
                return Err(e);
            }
            Err(_) => {
                return Err(NetError::new(
                    Stage::Dns,
                    Code::Timeout,
                    format!("DNS lookup for {host} did not finish within {} s.", cfg.request_timeout.as_secs_f64()),
                    "Check the DNS configuration of the Berth server.",
                )
                .with_details(vec![via(&route.proxy)]))
            }
        };
        let dns = started.elapsed();
        if route.no_proxy.matches_addresses(&all) {
            return Ok(direct);
        }
        if let Err(refused) = judge_every(&cfg.policy, host, literal, &all) {
            let mut e = refused.to_net_error();
            e.message.push_str(
                " Through a proxy every address the name resolves to is judged, since the proxy may connect to \
                 any of them.",
            );
            e.details.insert(0, via(&route.proxy));
            return Err(e);
        }
        Ok(Route { client, proxy: Some(&route.proxy), client_certificate, resolved: all, dns })
    }
}

fn build_client(
    cfg: &NetConfig,
    host: Option<&HostSettings>,
    proxy: Option<&Proxy>,
) -> Result<reqwest::Client, NetError> {
    let for_host = host.filter(|h| !h.host.is_empty()).map(|h| format!(" for {}", h.host)).unwrap_or_default();
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(cfg.user_agent.clone())
        // Redirects are judged in `send` so that credentials never cross origins.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(cfg.request_timeout)
        .connect_timeout(cfg.request_timeout)
        // Neither the environment's proxy variables nor the system's: only what Berth was told.
        .no_proxy();
    b = match proxy {
        // This client's resolver only ever resolves the proxy's own name: the destination goes
        // to the proxy as a name, after `route` judged its addresses.
        // Proxies close idle connections freely (tinyproxy after every answer): a pooled one
        // may be gone by the next request, so each request opens its own.
        Some(p) => b
            .pool_max_idle_per_host(0)
            .proxy(p.to_reqwest().map_err(|m| config_error(format!("The proxy {}: {m}", p.shown())))?)
            .dns_resolver(Arc::new(ProxyHostResolver { lookup: cfg.lookup.clone() })),
        None => b.dns_resolver(Arc::new(PolicyResolver { policy: cfg.policy.clone(), lookup: cfg.lookup.clone() })),
    };
    let mut roots: Vec<&[u8]> = cfg.extra_root_certs_pem.iter().map(Vec::as_slice).collect();
    if let Some(ca) = host.and_then(|h| h.ca_pem.as_deref()) {
        roots.push(ca);
    }
    for pem in roots {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            config_error(format!("A certificate authority{for_host} could not be read: {e}"))
                .with_remedy("Provide the certificate authority as PEM (-----BEGIN CERTIFICATE-----).")
        })?;
        if certs.is_empty() {
            return Err(config_error(format!("A certificate authority file{for_host} holds no PEM certificate."))
                .with_remedy("Provide the certificate authority as PEM (-----BEGIN CERTIFICATE-----)."));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if let Some(id) = host.and_then(|h| h.client_identity.as_ref()) {
        use secrecy::ExposeSecret;
        let mut pem = id.certificate_pem.clone();
        pem.push(b'\n');
        pem.extend_from_slice(id.key_pem.expose_secret().as_bytes());
        // reqwest's message names the part it could not read, never the key's bytes.
        let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
            config_error(format!("The client certificate{for_host} could not be read: {}", chain_text(&e).join(": ")))
                .with_remedy(
                "client_certificate must hold the PEM certificate (-----BEGIN CERTIFICATE-----) and client_key its \
                     PEM private key (PKCS#8, RSA or EC).",
            )
        })?;
        b = b.identity(identity);
    }
    b.build().map_err(|e| {
        NetError::new(
            Stage::Tls,
            Code::Internal,
            format!("The HTTP client{for_host} could not be set up: {}", chain_text(&e).join(": ")),
            "Check the certificate authorities and client certificates configured; this is otherwise a bug in Berth.",
        )
    })
}

fn config_error(message: String) -> NetError {
    NetError::new(Stage::Tls, Code::InvalidInput, message, "Check the network settings in Berth's configuration.")
}
