-- Registry changes in log order, for the processes that share one database: each follows the
-- changes the others made (services/src/registry_follow.rs) without reading the inspection
-- events between them.
CREATE INDEX IF NOT EXISTS events_registry_by_position
    ON events (position)
    WHERE aggregate_type = 'Registry';
