//! What Admin > Notifications shows: channels, the form to add one, a channel's delivery log.

use super::{Layout, Problem};
use askama::Template;

pub struct ChannelRowView {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub target: String,
    pub events: String,
    pub filter: String,
    pub enabled: bool,
}

pub struct DeliveryView {
    pub id: i64,
    pub event: String,
    pub state: String,
    pub attempts: i64,
    pub answer: String,
    pub when: String,
    pub error: String,
    pub delivery_id: String,
}

#[derive(Template)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    pub l: Layout,
    pub channels: Vec<ChannelRowView>,
    pub event_kinds: Vec<&'static str>,
    pub problem: Option<Problem>,
}

#[derive(Template)]
#[template(path = "notification_channel.html")]
pub struct ChannelDetailPage {
    pub l: Layout,
    pub channel: ChannelRowView,
    pub deliveries: Vec<DeliveryView>,
}
