-- Appends many events in one statement: all or none. A taken (aggregate, sequence) fails the
-- whole statement with a unique violation, exactly as the es crates' own insert would.
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT t.aggregate_type, t.aggregate_id, t.sequence, t.event_type, t.event_version, t.payload::json, '{}'::json
FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
  AS t (aggregate_type, aggregate_id, sequence, event_type, event_version, payload)
