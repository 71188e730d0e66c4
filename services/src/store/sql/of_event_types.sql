SELECT aggregate_id, sequence, CAST(payload AS TEXT)
FROM events
WHERE aggregate_type = $1 AND (event_type = $2 OR event_type = $3)
ORDER BY aggregate_id, sequence
