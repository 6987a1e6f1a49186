-- Device and client telemetry, view patterns, user settings and consent (issue 7).
--
-- Every table is keyed by user_id with ON DELETE CASCADE, so deleting a user deletes all of it.
-- Retention (src/usage/retention.rs) deletes old rows by the time columns indexed below.

-- The latest device report of each device record.
CREATE TABLE device_info (
    device_id     UUID PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    os            TEXT NOT NULL,
    os_version    TEXT,
    model         TEXT,
    manufacturer  TEXT,
    memory_mb     BIGINT,
    screen_width  BIGINT,
    screen_height BIGINT,
    app_version   TEXT,
    locale        TEXT,
    reported_at   BIGINT NOT NULL
);
CREATE INDEX device_info_user_idx ON device_info (user_id);

-- Earlier reports: a row each time a device's report changed, at most 20 per device.
CREATE TABLE device_info_history (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id     UUID NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    os            TEXT NOT NULL,
    os_version    TEXT,
    model         TEXT,
    manufacturer  TEXT,
    memory_mb     BIGINT,
    screen_width  BIGINT,
    screen_height BIGINT,
    app_version   TEXT,
    locale        TEXT,
    reported_at   BIGINT NOT NULL
);
CREATE INDEX device_info_history_device_idx ON device_info_history (device_id, id);
CREATE INDEX device_info_history_user_idx ON device_info_history (user_id);
CREATE INDEX device_info_history_time_idx ON device_info_history (reported_at);

-- Screen views and interactions (analytics); only while the user's analytics consent is on.
CREATE TABLE view_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id   UUID NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('screen', 'action')),
    screen      TEXT NOT NULL,
    target      TEXT,
    at          BIGINT NOT NULL,
    duration_ms BIGINT,
    received_at BIGINT NOT NULL
);
CREATE INDEX view_events_user_idx ON view_events (user_id, id);
CREATE INDEX view_events_time_idx ON view_events (received_at);

-- What the hub saw of each authenticated user socket.
CREATE TABLE connections (
    id              UUID PRIMARY KEY,
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id       UUID NOT NULL,
    ip              TEXT NOT NULL,
    user_agent      TEXT,
    client_version  TEXT,
    connected_at    BIGINT NOT NULL,
    disconnected_at BIGINT
);
CREATE INDEX connections_user_idx ON connections (user_id, connected_at);
CREATE INDEX connections_time_idx ON connections (connected_at);

-- One small JSON document per user (personalisation).
CREATE TABLE user_settings (
    user_id    UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    document   TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A user's consent switches, once they changed one; without a row the configured defaults apply.
CREATE TABLE consent (
    user_id                    UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    analytics                  BOOLEAN NOT NULL,
    analytics_changed_at       BIGINT,
    personalisation            BOOLEAN NOT NULL,
    personalisation_changed_at BIGINT
);
