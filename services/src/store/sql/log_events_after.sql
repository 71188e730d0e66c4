SELECT position, aggregate_type, aggregate_id, sequence, event_type, CAST(payload AS TEXT)
FROM events
WHERE position > $1
ORDER BY position
LIMIT $2
