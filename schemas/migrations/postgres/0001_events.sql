-- The cqrs-es event table, exactly as postgres-es expects it. `payload` is `json`, never
-- `jsonb`: the text is kept verbatim.
CREATE TABLE IF NOT EXISTS events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX IF NOT EXISTS events_by_type ON events (aggregate_type, event_type);
