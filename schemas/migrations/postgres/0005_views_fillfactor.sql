-- An inspection's history row is written again each time one of its events is projected
-- (shown, scanned, rated, result…), but none of the columns its indexes cover changes after
-- the code is issued. With room left in each page PostgreSQL rewrites such a row in place
-- (a heap-only tuple update) and touches none of the five indexes; at a full page it has to
-- put the new version elsewhere and insert it into every index. Half of each page is kept
-- free for those updates.
ALTER TABLE view_inspections SET (fillfactor = 50);
