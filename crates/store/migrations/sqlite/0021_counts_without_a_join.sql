-- PostgreSQL's migration 0021 rewrites its statement-level counting trigger; SQLite's row-level
-- triggers (migration 0010) never joined two sets of rows, so there is nothing to change here.
-- The file keeps both databases at the same schema version.
SELECT 1;
