-- Gives the next `$1` unpositioned events consecutive positions after the current maximum, in
-- (aggregate_type, aggregate_id, sequence) order, registry events first: a registry change (a
-- device key, a plan) waiting in the same round as the inspection events that rely on it must
-- come before them in the log, and nothing a registry event says depends on an inspection event.
-- Each branch reads at most `$1` rows in the order of the `events_unpositioned` index, so a
-- round costs the same however long the backlog is.
-- One statement, so one write transaction: SQLite takes its write lock before reading, and the
-- maximum cannot move underneath it.
WITH waiting AS (
    SELECT *
    FROM (SELECT 0 AS registry_last, rowid AS row_id, aggregate_type, aggregate_id, sequence
          FROM events INDEXED BY events_unpositioned
          WHERE position IS NULL
            AND aggregate_type = 'Registry'
          ORDER BY aggregate_type, aggregate_id, sequence
          LIMIT $1)
    UNION ALL
    SELECT *
    FROM (SELECT 1 AS registry_last, rowid AS row_id, aggregate_type, aggregate_id, sequence
          FROM events INDEXED BY events_unpositioned
          WHERE position IS NULL
            AND aggregate_type <> 'Registry'
          ORDER BY aggregate_type, aggregate_id, sequence
          LIMIT $1)
),
next AS (
    SELECT row_id,
           (SELECT COALESCE(MAX(position), 0) FROM events)
               + row_number() OVER (ORDER BY registry_last, aggregate_type, aggregate_id, sequence)
               AS position
    FROM waiting
    ORDER BY registry_last, aggregate_type, aggregate_id, sequence
    LIMIT $1
)
UPDATE events
SET position = next.position
FROM next
WHERE events.rowid = next.row_id
