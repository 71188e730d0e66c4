-- The cqrs-es event table, exactly as sqlite-es expects it. `payload` is the sealed event's
-- JSON text; hashes are computed over its RFC 8785 form, so storage formatting never matters.
CREATE TABLE IF NOT EXISTS events
(
  aggregate_type text                          NOT NULL,
  aggregate_id   text                          NOT NULL,
  sequence       integer CHECK (sequence >= 0) NOT NULL,
  event_type     text                          NOT NULL,
  event_version  text                          NOT NULL,
  payload        text                          NOT NULL,
  metadata       text                          NOT NULL,
  PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE INDEX IF NOT EXISTS events_by_type ON events (aggregate_type, event_type);
