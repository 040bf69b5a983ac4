-- Old notification events are pruned with their deliveries (the check history's retention):
-- finding them by age, and their deliveries by event, should not read every row.
CREATE INDEX notification_events_created ON notification_events(created_at);
CREATE INDEX notification_deliveries_event ON notification_deliveries(event_id);
