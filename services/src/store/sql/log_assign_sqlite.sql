-- Gives the next `$1` unpositioned events consecutive positions after the current maximum, in
-- (aggregate_type, aggregate_id, sequence) order, registry events first: a registry change (a
-- device key, a plan) waiting in the same round as the inspection events that rely on it must
-- come before them in the log, and nothing a registry event says depends on an inspection event.
-- One statement, so one write transaction: SQLite takes its write lock before reading, and the
-- maximum cannot move underneath it.
WITH next AS (
    SELECT rowid AS row_id,
           (SELECT COALESCE(MAX(position), 0) FROM events)
               + row_number() OVER (ORDER BY CASE WHEN aggregate_type = 'Registry' THEN 0 ELSE 1 END,
                                             aggregate_type, aggregate_id, sequence) AS position
    FROM events INDEXED BY events_unpositioned
    WHERE position IS NULL
    ORDER BY CASE WHEN aggregate_type = 'Registry' THEN 0 ELSE 1 END,
             aggregate_type, aggregate_id, sequence
    LIMIT $1
)
UPDATE events
SET position = next.position
FROM next
WHERE events.rowid = next.row_id
