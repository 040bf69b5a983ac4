-- PostgreSQL's migration 0022 turns off its GIN index's pending list; SQLite's FTS5 index
-- (migration 0010) has none. The file keeps both databases at the same schema version.
SELECT 1;
