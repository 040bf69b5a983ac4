-- The trigram index of the repository search (migration 0010) writes each new row straight
-- into its tree. With GIN's default `fastupdate`, new rows wait in a pending list that every
-- search through the index reads in full, until a vacuum or a 4 MB list merges it: after a bulk
-- import, each specific search paid for the whole list. Repositories are written rarely and
-- searched often, so inserts pay instead. Where pg_trgm was refused the index does not exist.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'repositories_search_trgm') THEN
        ALTER INDEX repositories_search_trgm SET (fastupdate = off);
    END IF;
END $$;
