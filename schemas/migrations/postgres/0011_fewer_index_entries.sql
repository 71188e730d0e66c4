-- Two structures that every write paid for and only rare reads used.
--
-- `events_by_type` on (aggregate_type, event_type) took an entry for every event, into a few
-- long runs of equal keys. Its one reader is the start-up read of the codes issued and revoked
-- (services/src/store/sql/of_event_types.sql); the registry's read (all_of_type.sql) and every
-- other read by type go through the primary key. This partial index holds only the events that
-- read asks for, in the order it returns them.
DROP INDEX IF EXISTS events_by_type;
CREATE INDEX IF NOT EXISTS events_codes_issued_or_revoked ON events (aggregate_id, sequence)
    WHERE aggregate_type = 'Inspection' AND event_type IN ('CodeIssued', 'CodeRevoked');

-- The officers of each inspection are written by the live projection in the same transaction as
-- the inspection's row, and both are rebuilt from the log together. The foreign key checked
-- every officer row against that row (a query and a row lock each) and guarded nothing the
-- projection does not already keep.
ALTER TABLE view_inspection_officers
    DROP CONSTRAINT IF EXISTS view_inspection_officers_inspection_id_fkey;
