//! The dns and connect steps of a check: resolve the host under the policy and open one TCP
//! connection, timing each part. Through a proxy, the connection is to the proxy, and for an
//! HTTPS destination the proxy is asked for the tunnel (`CONNECT`) the request will use, so a
//! refusal is reported with the proxy's own status and words before any request is made.

use crate::error::{NetError, Stage};
use crate::proxy::{open_tunnel, proxy_addresses, proxy_auth_failed, proxy_refused, Proxy};
use crate::resolve::resolve_allowed;
use crate::{NetClient, Probe};
use berth_core::Code;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use url::Url;

impl NetClient {
    /// Resolves `host` under the policy and opens (and drops) one TCP connection, directly.
    /// Tries the allowed addresses in order.
    pub async fn probe(&self, host: &str, port: u16) -> Result<Probe, NetError> {
        let (stream, probe) = self.connect_tcp(host, port).await?;
        drop(stream);
        Ok(probe)
    }

    /// Resolves `host` under the policy and opens one TCP connection, directly, to the first
    /// allowed address that answers, within the request timeout each. For transports other than
    /// HTTP (Git over SSH, which uses no proxy): the same policy, judged on this connection's own
    /// resolution, so DNS rebinding between the probe and the connection gains nothing.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> Result<(tokio::net::TcpStream, Probe), NetError> {
        let limit = self.config().request_timeout;
        let started = Instant::now();
        let lookup = resolve_allowed(self.policy(), self.config().lookup.as_ref(), host, port);
        let resolved = match tokio::time::timeout(limit, lookup).await {
            Ok(r) => r.map_err(|e| e.to_net_error())?,
            Err(_) => {
                return Err(NetError::new(
                    Stage::Dns,
                    Code::Timeout,
                    format!("DNS lookup for {host} did not finish within {} s.", limit.as_secs_f64()),
                    "Check the DNS configuration of the Berth server.",
                ))
            }
        };
        let dns = started.elapsed();
        let started = Instant::now();
        let mut failures = Vec::new();
        let mut all_timed_out = true;
        for ip in &resolved.allowed {
            let addr = SocketAddr::new(*ip, port);
            match tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let probe = Probe {
                        addrs: resolved.all,
                        allowed: resolved.allowed,
                        dns,
                        connect: started.elapsed(),
                        connected_to: addr,
                        via_proxy: None,
                    };
                    return Ok((stream, probe));
                }
                Ok(Err(e)) => {
                    all_timed_out = false;
                    failures.push(format!("{addr}: {e}"));
                }
                Err(_) => failures.push(format!("{addr}: no answer within {} s", limit.as_secs_f64())),
            }
        }
        let (code, message) = if all_timed_out {
            (Code::Timeout, format!("Could not connect to {host} port {port} within {} s.", limit.as_secs_f64()))
        } else {
            (Code::ConnectFailed, format!("Could not connect to {host} port {port}."))
        };
        Err(NetError::new(
            Stage::Connect,
            code,
            message,
            "Check the host and port in the URL and that the Berth server can reach them (firewall, VPN, proxy).",
        )
        .with_details(failures))
    }

    /// The dns and connect steps for `scheme://host:port`, the way a request there will go:
    /// directly ([`NetClient::probe`]) or through the proxy that applies.
    pub async fn probe_url(&self, https: bool, host: &str, port: u16) -> Result<Probe, NetError> {
        let scheme = if https { "https" } else { "http" };
        let bracketed =
            if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        let url = Url::parse(&format!("{scheme}://{bracketed}:{port}/")).map_err(|e| {
            NetError::new(
                Stage::Dns,
                Code::InvalidUrl,
                format!("{host}:{port} is not a host Berth can reach: {e}"),
                "Check the host in the URL.",
            )
        })?;
        let route = self.route(&url).await?;
        let Some(proxy) = route.proxy else { return self.probe(host, port).await };
        let limit = self.config().request_timeout;
        let started = Instant::now();
        let proxy_addrs = proxy_addresses(proxy, self.config().lookup.as_ref()).await?;
        let connected_to = if https {
            self.tunnel_probe(proxy, &proxy_addrs, host, port, limit).await?
        } else {
            // Plain HTTP goes to the proxy in absolute form: the connection is to the proxy.
            crate::proxy::connect_only(proxy, &proxy_addrs, limit).await?
        };
        Ok(Probe {
            addrs: route.resolved.clone(),
            allowed: route.resolved.clone(),
            dns: route.dns,
            connect: started.elapsed(),
            connected_to,
            via_proxy: Some(proxy.shown()),
        })
    }

    async fn tunnel_probe(
        &self,
        proxy: &Proxy,
        proxy_addrs: &[SocketAddr],
        host: &str,
        port: u16,
        limit: Duration,
    ) -> Result<SocketAddr, NetError> {
        let (stream, addr, answer) = open_tunnel(proxy, proxy_addrs, host, port, limit).await?;
        drop(stream);
        match answer.status {
            200..=299 => Ok(addr),
            // A `CONNECT` is the proxy's own business: a 401 to it is about proxy credentials too.
            status @ (401 | 407) => Err(proxy_auth_failed(proxy, status)),
            _ => Err(proxy_refused(proxy, host, port, &answer)),
        }
    }
}
