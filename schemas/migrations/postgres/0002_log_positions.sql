-- The global log: every event gets a position, assigned after commit by the single sequencer
-- (services/src/log/sequencer.rs), never by a serial column, whose values become visible out of
-- order under concurrent commits and leave gaps on rollback. Positions start at 1, have no
-- gaps, and once given never change. The es crates' INSERT names its own columns, so they
-- leave `position` NULL.
ALTER TABLE events ADD COLUMN IF NOT EXISTS position bigint;

CREATE UNIQUE INDEX IF NOT EXISTS events_by_position ON events (position);

-- What the sequencer scans: the (usually small) backlog of rows without a position, in the
-- order it assigns them.
CREATE INDEX IF NOT EXISTS events_unpositioned ON events (aggregate_type, aggregate_id, sequence)
    WHERE position IS NULL;

-- A position once given never changes (the sequencer only fills NULLs; this makes any other
-- writer fail loudly instead of silently rewriting the log's order).
CREATE OR REPLACE FUNCTION events_position_is_final() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'position % of %/%/% is final', OLD.position, OLD.aggregate_type,
        OLD.aggregate_id, OLD.sequence;
END
$$;

DROP TRIGGER IF EXISTS events_position_is_final ON events;
CREATE TRIGGER events_position_is_final
    BEFORE UPDATE OF position ON events
    FOR EACH ROW
    WHEN (OLD.position IS NOT NULL AND NEW.position IS DISTINCT FROM OLD.position)
EXECUTE FUNCTION events_position_is_final();

-- How far each follower of the log (the NATS publisher, projections, ...) has got: the last
-- position it has fully handled.
CREATE TABLE IF NOT EXISTS cursors
(
    name     text PRIMARY KEY,
    position bigint CHECK (position >= 0) NOT NULL
);
