//! `berth channel …`: notification channels (webhook, Slack, email), their delivery logs, a
//! test event and redelivery. Secrets (a webhook's signing secret, a Slack hook URL, an SMTP
//! password) are read from stdin or a prompt, never from the command line.

use super::{as_id, connect, not_resolved, prompt_secret, secret_from_stdin, CmdResult, Ctx, Failure, Global};
use berth::output::{clean, fields, Table};
use berth_core::Code;
use berth_proto::{Channel, ChannelCreate, CredentialSelector, Delivery, Id, SmtpSettings};
use clap::{Args, Subcommand};

#[derive(Debug, Clone, Subcommand)]
pub enum ChannelCmd {
    /// Add a channel. Events: repository.failed, repository.recovered, credential.expiring,
    /// credential.expired, credential.checks_paused, import.finished (all when none is named).
    Add(Box<AddArgs>),
    /// List the channels.
    #[command(alias = "ls")]
    List,
    /// Show a channel and its latest deliveries.
    Show { channel: String },
    /// Delete a channel and its delivery log.
    #[command(alias = "remove", alias = "delete")]
    Rm { channel: String },
    /// Queue a test event for a channel.
    Test { channel: String },
    /// A channel's delivery log, newest first.
    Deliveries { channel: String },
    /// Send a delivery's event again (a new delivery).
    Redeliver {
        /// The delivery id, as `berth channel deliveries` lists it.
        delivery: Id,
    },
}

#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    pub name: String,
    /// A webhook channel posting signed JSON to this URL (the signing secret is read from
    /// stdin or prompted for).
    #[arg(long, value_name = "URL", conflicts_with_all = ["slack", "email"])]
    pub webhook: Option<String>,
    /// A Slack (or Slack-compatible) incoming webhook; its URL is a secret, read from stdin or
    /// prompted for.
    #[arg(long, conflicts_with = "email")]
    pub slack: bool,
    /// An email channel: the SMTP relay as host:port.
    #[arg(long, value_name = "HOST:PORT")]
    pub email: Option<String>,
    /// starttls (port 587) or tls (port 465).
    #[arg(long, default_value = "starttls", requires = "email")]
    pub smtp_security: String,
    /// The SMTP user name; its password is read from stdin or prompted for.
    #[arg(long, requires = "email")]
    pub smtp_user: Option<String>,
    #[arg(long, requires = "email")]
    pub from: Option<String>,
    /// A recipient; repeatable.
    #[arg(long, requires = "email")]
    pub to: Vec<String>,
    /// Read the secret (signing secret, hook URL or SMTP password) from stdin.
    #[arg(long)]
    pub secret_stdin: bool,
    /// An event to send; repeatable.
    #[arg(long = "event", value_name = "EVENT")]
    pub events: Vec<String>,
    /// Only repositories whose name matches (`*`, `?`, case ignored).
    #[arg(long, value_name = "PATTERN")]
    pub repos: Option<String>,
    /// Only events about this credential (id or name) and its repositories.
    #[arg(long)]
    pub credential: Option<String>,
}

fn secret(a: &AddArgs, prompt: &str, what: &str) -> Result<String, Failure> {
    if a.secret_stdin {
        secret_from_stdin(what)
    } else {
        prompt_secret(prompt, what)
    }
}

fn create_request(a: &AddArgs) -> Result<ChannelCreate, Failure> {
    let mut req = ChannelCreate {
        name: a.name.clone(),
        kind: String::new(),
        url: None,
        secret: None,
        smtp: None,
        events: a.events.clone(),
        repository_pattern: a.repos.clone(),
        credential: a.credential.as_deref().map(CredentialSelector::from),
        enabled: true,
    };
    if let Some(url) = &a.webhook {
        req.kind = "webhook".into();
        req.url = Some(url.clone());
        req.secret = Some(secret(a, "Signing secret: ", "secret")?);
    } else if a.slack {
        req.kind = "slack".into();
        req.url = Some(secret(a, "Slack webhook URL: ", "secret")?);
    } else if let Some(relay) = &a.email {
        let (host, port) = relay
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| Failure::Usage(format!("--email {relay:?}: give the SMTP relay as host:port")))?;
        let password = match &a.smtp_user {
            Some(_) => Some(secret(a, "SMTP password: ", "secret")?),
            None => None,
        };
        req.kind = "email".into();
        req.smtp = Some(SmtpSettings {
            host,
            port,
            security: a.smtp_security.clone(),
            username: a.smtp_user.clone(),
            password,
            from: a.from.clone().ok_or_else(|| Failure::Usage("--email needs --from".into()))?,
            to: a.to.clone(),
        });
    } else {
        return Err(Failure::Usage("say what the channel is: --webhook URL, --slack or --email HOST:PORT".into()));
    }
    Ok(req)
}

pub async fn run(global: &Global, cmd: ChannelCmd) -> CmdResult {
    let ctx = connect(global, true)?;
    match cmd {
        ChannelCmd::Add(a) => {
            let c = ctx.client.create_channel(&create_request(&a)?).await?;
            ctx.emit(&c, || format!("Added channel {} (id {}): {}.\n", clean(&c.name), c.id, clean(&c.target)));
        }
        ChannelCmd::List => {
            let list = ctx.client.list_channels().await?;
            ctx.emit(&list, || channel_table(&list));
        }
        ChannelCmd::Show { channel } => {
            let id = resolve(&ctx, &channel).await?;
            let c = ctx.client.get_channel(id).await?;
            let log = ctx.client.channel_deliveries(id).await?;
            ctx.emit(&c, || format!("{}\n{}", channel_detail(&c), delivery_table(&log)));
        }
        ChannelCmd::Rm { channel } => {
            let id = resolve(&ctx, &channel).await?;
            let c = ctx.client.delete_channel(id).await?;
            ctx.emit(&c, || format!("Deleted channel {} (id {}).\n", clean(&c.name), c.id));
        }
        ChannelCmd::Test { channel } => {
            let id = resolve(&ctx, &channel).await?;
            let d = ctx.client.test_channel(id).await?;
            ctx.emit(&d, || format!("Queued a test event (delivery {}); see `berth channel deliveries {id}`.\n", d.id));
        }
        ChannelCmd::Deliveries { channel } => {
            let id = resolve(&ctx, &channel).await?;
            let log = ctx.client.channel_deliveries(id).await?;
            ctx.emit(&log, || delivery_table(&log));
        }
        ChannelCmd::Redeliver { delivery } => {
            let d = ctx.client.redeliver(delivery).await?;
            ctx.emit(&d, || format!("Queued delivery {} of the event again as delivery {}.\n", delivery, d.id));
        }
    }
    Ok(())
}

async fn resolve(ctx: &Ctx, key: &str) -> Result<Id, Failure> {
    let list = ctx.client.list_channels().await?;
    if let Some(id) = as_id(key).filter(|id| list.iter().any(|c| c.id == *id)) {
        return Ok(id);
    }
    match list.iter().find(|c| c.name.eq_ignore_ascii_case(key.trim())) {
        Some(c) => Ok(c.id),
        None => Err(not_resolved("channel", key, &[], Code::ChannelNotFound, "berth channel list")),
    }
}

fn events_word(events: &[String]) -> String {
    if events.is_empty() {
        "all".to_owned()
    } else {
        events.join(", ")
    }
}

pub fn channel_table(list: &[Channel]) -> String {
    let mut t = Table::new(&["ID", "NAME", "KIND", "TARGET", "EVENTS", "ENABLED"]);
    for c in list {
        t.row([
            c.id.to_string(),
            clean(&c.name),
            c.kind.clone(),
            clean(&c.target),
            events_word(&c.events),
            if c.enabled { "yes" } else { "no" }.to_owned(),
        ]);
    }
    t.render()
}

fn channel_detail(c: &Channel) -> String {
    fields(&[
        ("Channel", format!("{} (id {})", clean(&c.name), c.id)),
        ("Kind", c.kind.clone()),
        ("Target", clean(&c.target)),
        ("Events", events_word(&c.events)),
        ("Repositories", c.repository_pattern.as_deref().map_or("all".to_owned(), clean)),
        ("Credential", c.credential.as_ref().map_or("any".to_owned(), |r| clean(&r.name))),
        ("Enabled", if c.enabled { "yes" } else { "no" }.to_owned()),
    ])
}

pub fn delivery_table(list: &[Delivery]) -> String {
    let mut t = Table::new(&["ID", "EVENT", "STATE", "ATTEMPTS", "ANSWER", "WHEN", "ERROR"]);
    for d in list {
        t.row([
            d.id.to_string(),
            d.event.clone(),
            d.state.clone(),
            d.attempts.to_string(),
            d.status_code.map_or("-".to_owned(), |s| s.to_string()),
            d.updated_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            d.error.as_deref().map_or(String::new(), clean),
        ]);
    }
    t.render()
}
