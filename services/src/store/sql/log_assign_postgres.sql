-- Gives the next `$1` unpositioned events consecutive positions after the current maximum, in
-- (aggregate_type, aggregate_id, sequence) order, registry events first: a registry change (a
-- device key, a plan) waiting in the same round as the inspection events that rely on it must
-- come before them in the log, and nothing a registry event says depends on an inspection event.
-- Run only by the sequencer holding the advisory lock, in the same transaction, so the maximum
-- cannot move underneath it.
WITH next AS (
    SELECT aggregate_type,
           aggregate_id,
           sequence,
           (SELECT COALESCE(MAX(position), 0) FROM events)
               + row_number() OVER (ORDER BY CASE WHEN aggregate_type = 'Registry' THEN 0 ELSE 1 END,
                                             aggregate_type, aggregate_id, sequence) AS position
    FROM events
    WHERE position IS NULL
    ORDER BY CASE WHEN aggregate_type = 'Registry' THEN 0 ELSE 1 END,
             aggregate_type, aggregate_id, sequence
    LIMIT $1
)
UPDATE events AS e
SET position = next.position
FROM next
WHERE e.aggregate_type = next.aggregate_type
  AND e.aggregate_id = next.aggregate_id
  AND e.sequence = next.sequence
  AND e.position IS NULL
