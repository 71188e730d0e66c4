-- Whether this transaction is the sequencer: at most one transaction holds this lock at a time,
-- and it is released at commit, rollback, or when the session dies.
SELECT pg_try_advisory_xact_lock($1)
