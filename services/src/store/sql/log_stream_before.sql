SELECT position, aggregate_type, aggregate_id, sequence, event_type, CAST(payload AS TEXT)
FROM events
WHERE aggregate_type = $1
  AND aggregate_id = $2
  AND position < $3
ORDER BY sequence
