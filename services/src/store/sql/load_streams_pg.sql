SELECT aggregate_id, sequence, CAST(payload AS TEXT)
FROM events
WHERE aggregate_type = $1 AND aggregate_id = ANY($2)
ORDER BY aggregate_id, sequence
