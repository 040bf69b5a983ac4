-- Notifications: channels an administrator sets up, the events state changes raise, and one
-- delivery per event and channel, leased by whichever instance sends it.

-- A channel: `kind` is webhook | slack | email; `settings` is JSON of what is not secret (the
-- webhook URL, the Slack hook's host, the SMTP server and addresses); the sealed secret is
-- the webhook's signing secret, the whole Slack hook URL, or the SMTP password.
CREATE TABLE notification_channels (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE COLLATE NOCASE,
    kind               TEXT NOT NULL,
    settings           TEXT NOT NULL,
    -- JSON array of event kinds; empty: every event.
    events             TEXT NOT NULL DEFAULT '[]',
    -- Only repositories whose name matches this glob (`*`, `?`), when set.
    repository_pattern TEXT,
    -- Only repositories of (and events about) this credential, when set.
    credential_id      INTEGER,
    enabled            INTEGER NOT NULL DEFAULT 1,
    key_id             TEXT NOT NULL,
    wrapped_key        BLOB NOT NULL,
    ciphertext         BLOB NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- An event: written in the transaction of the change that raised it; never holds a secret.
CREATE TABLE notification_events (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    subject_id    INTEGER,
    subject_name  TEXT NOT NULL,
    credential_id INTEGER,
    old_status    TEXT,
    new_status    TEXT,
    code          TEXT,
    message       TEXT,
    remedy        TEXT,
    details       TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL
);

-- A delivery of one event to one channel: pending until sent, leased while being sent.
CREATE TABLE notification_deliveries (
    id              INTEGER PRIMARY KEY,
    channel_id      INTEGER NOT NULL REFERENCES notification_channels(id) ON DELETE CASCADE,
    event_id        INTEGER NOT NULL REFERENCES notification_events(id) ON DELETE CASCADE,
    delivery_uuid   TEXT NOT NULL UNIQUE,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX notification_deliveries_due ON notification_deliveries(state, next_attempt_at);
CREATE INDEX notification_deliveries_channel ON notification_deliveries(channel_id, id);

-- Which expiry windows (30, 7, 1 days, expired) of a credential's expiry date were announced:
-- the primary key makes each window's event once, whichever instance sees it first.
CREATE TABLE credential_expiry_notices (
    credential_id INTEGER NOT NULL REFERENCES credentials(id) ON DELETE CASCADE,
    expires_on    TEXT NOT NULL,
    expiry_window TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (credential_id, expires_on, expiry_window)
);
