-- Gives the next `$1` unpositioned events consecutive positions after the current maximum, in
-- (aggregate_type, aggregate_id, sequence) order, registry events first: a registry change (a
-- device key, a plan) waiting in the same round as the inspection events that rely on it must
-- come before them in the log, and nothing a registry event says depends on an inspection event.
-- Each branch reads at most `$1` rows in the order of the `events_unpositioned` index, so a
-- round costs the same however long the backlog is (sorting the whole backlog by a computed
-- key made rounds grow with it).
-- Run only by the sequencer holding the advisory lock, in the same transaction, so the maximum
-- cannot move underneath it.
WITH waiting AS (
    SELECT *
    FROM (SELECT 0 AS registry_last, aggregate_type, aggregate_id, sequence
          FROM events
          WHERE position IS NULL
            AND aggregate_type = 'Registry'
          ORDER BY aggregate_type, aggregate_id, sequence
          LIMIT $1) AS registry
    UNION ALL
    SELECT *
    FROM (SELECT 1 AS registry_last, aggregate_type, aggregate_id, sequence
          FROM events
          WHERE position IS NULL
            AND aggregate_type <> 'Registry'
          ORDER BY aggregate_type, aggregate_id, sequence
          LIMIT $1) AS others
),
next AS (
    SELECT aggregate_type,
           aggregate_id,
           sequence,
           (SELECT COALESCE(MAX(position), 0) FROM events)
               + row_number() OVER (ORDER BY registry_last, aggregate_type, aggregate_id, sequence)
               AS position
    FROM waiting
    ORDER BY registry_last, aggregate_type, aggregate_id, sequence
    LIMIT $1
)
UPDATE events AS e
SET position = next.position
FROM next
WHERE e.aggregate_type = next.aggregate_type
  AND e.aggregate_id = next.aggregate_id
  AND e.sequence = next.sequence
  AND e.position IS NULL
