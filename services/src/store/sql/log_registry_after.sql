-- The registry changes positioned after $1, in log order: which entities another process may
-- have changed since this one last looked (0010_registry_by_position.sql serves it).
SELECT position, aggregate_id
FROM events
WHERE aggregate_type = 'Registry'
  AND position > $1
ORDER BY position
LIMIT $2
