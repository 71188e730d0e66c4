-- The global log's Merkle tree (RFC 9162) over the events in position order: leaf i is the
-- event at position i + 1 (schemas/VERIFY.md gives the leaf data). Stored are the hashes of the
-- tree's perfect subtrees: (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level), level
-- 0 being the leaf hashes, so any root and any proof is read from O(log n) rows. How many leaves
-- the stored tree has is the `log_tree` cursor, moved in the same transaction as its nodes.
CREATE TABLE IF NOT EXISTS log_tree_nodes
(
    level integer NOT NULL CHECK (level BETWEEN 0 AND 62),
    idx   integer NOT NULL CHECK (idx >= 0),
    hash  blob    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- Signed checkpoints (C2SP tlog-checkpoint in a signed note), one per tree size, all kept.
-- `signed_at` is RFC 3339 UTC text.
CREATE TABLE IF NOT EXISTS log_checkpoints
(
    tree_size integer PRIMARY KEY CHECK (tree_size > 0),
    root      blob    NOT NULL CHECK (length(root) = 32),
    note      text    NOT NULL,
    signed_at text    NOT NULL
) STRICT;

INSERT INTO cursors (name, position) VALUES ('log_tree', 0) ON CONFLICT (name) DO NOTHING;

-- Nodes and checkpoints are final, like positions: a bug that would rewrite them fails loudly.
CREATE TRIGGER IF NOT EXISTS log_tree_nodes_no_update BEFORE UPDATE ON log_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'log tree nodes are final');
END;
CREATE TRIGGER IF NOT EXISTS log_tree_nodes_no_delete BEFORE DELETE ON log_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'log tree nodes are final');
END;
CREATE TRIGGER IF NOT EXISTS log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are final');
END;
CREATE TRIGGER IF NOT EXISTS log_checkpoints_no_delete BEFORE DELETE ON log_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'checkpoints are final');
END;
