-- The global log's Merkle tree (RFC 9162) over the events in position order: leaf i is the
-- event at position i + 1 (schemas/VERIFY.md gives the leaf data). Stored are the hashes of the
-- tree's perfect subtrees: (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level), level
-- 0 being the leaf hashes, so any root and any proof is read from O(log n) rows. How many leaves
-- the stored tree has is the `log_tree` cursor, moved in the same transaction as its nodes.
CREATE TABLE IF NOT EXISTS log_tree_nodes
(
    level smallint NOT NULL CHECK (level BETWEEN 0 AND 62),
    idx   bigint   NOT NULL CHECK (idx >= 0),
    hash  bytea    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Signed checkpoints (C2SP tlog-checkpoint in a signed note), one per tree size, all kept.
-- `signed_at` is RFC 3339 UTC text.
CREATE TABLE IF NOT EXISTS log_checkpoints
(
    tree_size bigint      PRIMARY KEY CHECK (tree_size > 0),
    root      bytea       NOT NULL CHECK (length(root) = 32),
    note      text        NOT NULL,
    signed_at text        NOT NULL
);

INSERT INTO cursors (name, position) VALUES ('log_tree', 0) ON CONFLICT (name) DO NOTHING;

-- Nodes and checkpoints are final, like positions: a bug that would rewrite them fails loudly.
CREATE OR REPLACE FUNCTION log_tree_is_final() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION '% rows are final', TG_TABLE_NAME;
END
$$;

DROP TRIGGER IF EXISTS log_tree_nodes_are_final ON log_tree_nodes;
CREATE TRIGGER log_tree_nodes_are_final
    BEFORE UPDATE OR DELETE ON log_tree_nodes
    FOR EACH ROW
EXECUTE FUNCTION log_tree_is_final();

DROP TRIGGER IF EXISTS log_checkpoints_are_final ON log_checkpoints;
CREATE TRIGGER log_checkpoints_are_final
    BEFORE UPDATE OR DELETE ON log_checkpoints
    FOR EACH ROW
EXECUTE FUNCTION log_tree_is_final();
