-- SQLite's text search index changed (its migration 0015); PostgreSQL's pg_trgm index is
-- unchanged. Kept so both dialects have the same migration numbers.
SELECT 1;
