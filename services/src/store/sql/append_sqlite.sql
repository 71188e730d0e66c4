-- Appends many events in one statement: all or none. $1 is a JSON array of rows
-- [aggregate_type, aggregate_id, sequence, event_type, event_version, payload text].
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
       json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), '{}'
FROM json_each($1)
