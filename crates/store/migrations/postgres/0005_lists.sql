-- Lists that stay fast at 100,000 repositories: what the list filters on is a column, and each
-- filter has an index that is also in list order (name, case-insensitive), so a page is a range
-- scan that stops after `limit` rows, never a sort of every match.

-- The repository's current status, kept true by the store: `check_status` is the status of its
-- latest check (`unchecked` before the first), written with the check in `record_outcome`;
-- `status` is `paused` while its credential's background checks are paused, else
-- `check_status`, rewritten whenever either changes (a check, a pause, a credential edit, a
-- repository moved to another credential).
ALTER TABLE repositories ADD COLUMN check_status TEXT NOT NULL DEFAULT 'unchecked';
ALTER TABLE repositories ADD COLUMN status TEXT NOT NULL DEFAULT 'unchecked';
-- The clone URL's host (and port), lower-case: the `host` filter.
ALTER TABLE repositories ADD COLUMN host TEXT NOT NULL DEFAULT '';

UPDATE repositories SET check_status = COALESCE(
    (SELECT c.status FROM checks c WHERE c.repository_id = repositories.id ORDER BY c.id DESC LIMIT 1), 'unchecked');
UPDATE repositories SET status = CASE WHEN EXISTS (
    SELECT 1 FROM credentials c WHERE c.id = repositories.credential_id AND c.checks_paused_at IS NOT NULL)
    THEN 'paused' ELSE check_status END;
-- Canonical clone URLs are scheme://host[:port]/path.
UPDATE repositories SET host = lower(split_part(split_part(clone_url, '://', 2), '/', 1))
WHERE strpos(clone_url, '://') > 0;

-- The list's order is the name's unique index (collation nocase); each filter gets its own, in
-- that order (the name column's collation is the index's).
CREATE INDEX repositories_status_name ON repositories(status, name);
CREATE INDEX repositories_provider_name ON repositories(provider, name);
CREATE INDEX repositories_host_name ON repositories(host, name);
CREATE INDEX repositories_credential_name ON repositories(credential_id, name);
-- Superseded by repositories_credential_name (same leading column).
DROP INDEX repositories_credential;
