-- Appends many events in one statement, all or none, with their log positions when nothing
-- committed earlier still waits for one (see 0008_append_positioned.sql). Returns the highest
-- position given, or 0.
SELECT saoma_append_positioned($1, $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
