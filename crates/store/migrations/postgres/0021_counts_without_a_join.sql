-- `repository_counts_track` (migration 0010) found the rows whose status, credential, provider
-- or host changed by joining the statement's old and new rows. The function's cached plan for
-- that join was a nested loop: a statement updating the status of every repository of one
-- credential (a pause, its lifting) compared each old row with each new one, seconds at
-- 5,000 repositories and hours at 100,000. The same sums from EXCEPT ALL, which hashes or
-- sorts: the keys of old rows no new row has count -1, those of new rows no old row had +1.
CREATE OR REPLACE FUNCTION repository_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO repository_counts (status, credential_id, provider, host, n)
            SELECT status, COALESCE(credential_id, 0), provider, host, COUNT(*) FROM new_rows GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO repository_counts (status, credential_id, provider, host, n)
            SELECT status, COALESCE(credential_id, 0), provider, host, -COUNT(*) FROM old_rows GROUP BY 1, 2, 3, 4;
    ELSE
        INSERT INTO repository_counts (status, credential_id, provider, host, n)
            SELECT k.status, COALESCE(k.credential_id, 0), k.provider, k.host, SUM(k.n) FROM (
                SELECT a.*, 1 AS n FROM (
                    SELECT id, status, credential_id, provider, host FROM new_rows
                    EXCEPT ALL
                    SELECT id, status, credential_id, provider, host FROM old_rows
                ) a
                UNION ALL
                SELECT b.*, -1 AS n FROM (
                    SELECT id, status, credential_id, provider, host FROM old_rows
                    EXCEPT ALL
                    SELECT id, status, credential_id, provider, host FROM new_rows
                ) b
            ) k GROUP BY 1, 2, 3, 4 HAVING SUM(k.n) <> 0;
    END IF;
    RETURN NULL;
END $$;
