-- The worst-rated visits (`GET /api/v1/satisfaction/worst`): rated inspections, lowest level
-- first, then the earliest date, then the id. Only rated rows are indexed, in that order, so
-- the worst few of the whole view are read from the front of the index instead of sorting
-- every rated row. The rating is set once per visit, after the code is issued: that one update
-- of each rated row is not heap-only (see 0005_views_fillfactor.sql); the others still are.
CREATE INDEX IF NOT EXISTS view_inspections_by_rating
    ON view_inspections (rating, date, inspection_id)
    WHERE rating IS NOT NULL;
