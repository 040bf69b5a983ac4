//! The notification endpoints: channels, their delivery logs, a test event, redelivery.

use super::{ApiClient, ClientError};
use berth_proto::{Channel, ChannelCreate, ChannelUpdate, Delivery, Id, Page};
use reqwest::Method;

impl ApiClient {
    /// Every notification channel, by name.
    pub async fn list_channels(&self) -> Result<Vec<Channel>, ClientError> {
        let page: Page<Channel> = self.get("api/v1/notification-channels").await?;
        Ok(page.items)
    }

    pub async fn get_channel(&self, id: Id) -> Result<Channel, ClientError> {
        self.get(&format!("api/v1/notification-channels/{id}")).await
    }

    /// The request carries its secrets (signing secret, Slack hook URL, SMTP password) in its
    /// body only.
    pub async fn create_channel(&self, req: &ChannelCreate) -> Result<Channel, ClientError> {
        self.send_json(Method::POST, "api/v1/notification-channels", req).await
    }

    pub async fn update_channel(&self, id: Id, req: &ChannelUpdate) -> Result<Channel, ClientError> {
        self.send_json(Method::PATCH, &format!("api/v1/notification-channels/{id}"), req).await
    }

    /// Answers the channel deleted.
    pub async fn delete_channel(&self, id: Id) -> Result<Channel, ClientError> {
        self.call(self.request(Method::DELETE, &format!("api/v1/notification-channels/{id}"))?).await
    }

    /// `POST …/{id}/test`: queues a test event; answers its delivery.
    pub async fn test_channel(&self, id: Id) -> Result<Delivery, ClientError> {
        self.call(self.request(Method::POST, &format!("api/v1/notification-channels/{id}/test"))?).await
    }

    /// The channel's delivery log, newest first.
    pub async fn channel_deliveries(&self, id: Id) -> Result<Vec<Delivery>, ClientError> {
        let page: Page<Delivery> = self.get(&format!("api/v1/notification-channels/{id}/deliveries")).await?;
        Ok(page.items)
    }

    /// `POST /api/v1/notification-deliveries/{id}/redeliver`: answers the new delivery.
    pub async fn redeliver(&self, delivery: Id) -> Result<Delivery, ClientError> {
        self.call(self.request(Method::POST, &format!("api/v1/notification-deliveries/{delivery}/redeliver"))?).await
    }
}
