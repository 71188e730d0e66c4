-- Views kept by the live projection (services/src/views/), rebuilt from the log at any time.
-- One row per inspection (history), the officers of each inspection (for "my inspections" and
-- "my unexpired codes"), and the warnings. The projection's position is the `views` cursor in
-- `cursors`, written in the same transaction as the rows, so a restart neither misses nor
-- double-counts an event. Times are RFC 3339 UTC text with second precision (they sort as
-- they read); `date` and `month` are Asia/Shanghai calendar values.
CREATE TABLE IF NOT EXISTS view_inspections
(
    inspection_id         text PRIMARY KEY,
    issued_position       bigint   NOT NULL,
    kind                  text     NOT NULL,
    kind_detail           text     NOT NULL,
    routine               boolean  NOT NULL,
    agency_code           text     NOT NULL,
    agency_name           text     NOT NULL,
    agency_level          text     NOT NULL,
    agency_region         text     NOT NULL,
    enterprise_code       text     NOT NULL,
    enterprise_name       text     NOT NULL,
    region                text     NOT NULL,
    officers              text     NOT NULL,
    officer_names         text     NOT NULL,
    item_codes            text     NOT NULL,
    item_names            text     NOT NULL,
    joint_partners        text     NOT NULL,
    date                  text     NOT NULL,
    month                 text     NOT NULL,
    valid_from            text     NOT NULL,
    valid_until           text     NOT NULL,
    issued_at             text     NOT NULL,
    status                text     NOT NULL,
    shown_at              text     NOT NULL,
    enterprise_scanned_at text     NOT NULL,
    officer_scanned_at    text     NOT NULL,
    mutual_verified       boolean  NOT NULL,
    refused_scans         integer  NOT NULL,
    rating                integer,
    rating_comment        text     NOT NULL,
    rated_at              text     NOT NULL,
    result                text     NOT NULL,
    result_feedback       text     NOT NULL,
    reported_at           text     NOT NULL,
    revoked_at            text     NOT NULL,
    feedback_count        integer  NOT NULL,
    events                integer  NOT NULL
);

CREATE INDEX IF NOT EXISTS view_inspections_by_enterprise ON view_inspections (enterprise_code, date, issued_position);
CREATE INDEX IF NOT EXISTS view_inspections_by_agency ON view_inspections (agency_code, date, issued_position);
CREATE INDEX IF NOT EXISTS view_inspections_by_region ON view_inspections (region, date, issued_position);
CREATE INDEX IF NOT EXISTS view_inspections_by_date ON view_inspections (date, issued_position);

CREATE TABLE IF NOT EXISTS view_inspection_officers
(
    officer         text    NOT NULL,
    name            text    NOT NULL,
    inspection_id   text    NOT NULL REFERENCES view_inspections (inspection_id),
    date            text    NOT NULL,
    issued_position bigint  NOT NULL,
    PRIMARY KEY (officer, inspection_id)
);

CREATE INDEX IF NOT EXISTS view_inspection_officers_by_date ON view_inspection_officers (officer, date, issued_position);

CREATE TABLE IF NOT EXISTS view_warnings
(
    id         text PRIMARY KEY,
    rule       text   NOT NULL,
    severity   text   NOT NULL,
    region     text   NOT NULL,
    -- `;`-separated with a leading and a trailing `;`, so `LIKE '%;CODE;%'` finds one.
    agencies   text   NOT NULL,
    enterprise text   NOT NULL,
    officers   text   NOT NULL,
    at         text   NOT NULL,
    -- JSON array of event ids.
    evidence   text   NOT NULL,
    detail     text   NOT NULL,
    -- The log position the projection had reached when the warning fired.
    position   bigint NOT NULL
);

CREATE INDEX IF NOT EXISTS view_warnings_by_rule ON view_warnings (rule, at);
CREATE INDEX IF NOT EXISTS view_warnings_by_region ON view_warnings (region, at);
CREATE INDEX IF NOT EXISTS view_warnings_by_at ON view_warnings (at, id);
CREATE INDEX IF NOT EXISTS view_warnings_by_enterprise ON view_warnings (enterprise, at);
