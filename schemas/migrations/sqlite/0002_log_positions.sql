-- The global log: every event gets a position, assigned after commit by the single sequencer
-- (services/src/log/sequencer.rs), never by an autoincrement column. Positions start at 1,
-- have no gaps, and once given never change. sqlite-es's INSERT names its own columns, so it
-- leaves `position` NULL.
ALTER TABLE events ADD COLUMN position integer;

CREATE UNIQUE INDEX IF NOT EXISTS events_by_position ON events (position);

-- What the sequencer scans: the (usually small) backlog of rows without a position, in the
-- order it assigns them.
CREATE INDEX IF NOT EXISTS events_unpositioned ON events (aggregate_type, aggregate_id, sequence)
    WHERE position IS NULL;

-- A position once given never changes (the sequencer only fills NULLs; this makes any other
-- writer fail loudly instead of silently rewriting the log's order).
CREATE TRIGGER IF NOT EXISTS events_position_is_final
    BEFORE UPDATE OF position ON events
    WHEN OLD.position IS NOT NULL AND NEW.position IS NOT OLD.position
BEGIN
    SELECT RAISE(ABORT, 'a log position is final');
END;

-- How far each follower of the log (the NATS publisher, projections, ...) has got: the last
-- position it has fully handled.
CREATE TABLE IF NOT EXISTS cursors
(
  name     text PRIMARY KEY,
  position integer CHECK (position >= 0) NOT NULL
) STRICT;
