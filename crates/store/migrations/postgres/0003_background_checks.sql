-- Background checks (as migrations/sqlite/0003_background_checks.sql).

ALTER TABLE repositories ADD COLUMN next_check_at TIMESTAMPTZ;
ALTER TABLE repositories ADD COLUMN lease_owner TEXT;
ALTER TABLE repositories ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX repositories_due ON repositories(next_check_at);

ALTER TABLE checks ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE checks ADD COLUMN reason TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE checks ADD COLUMN instance TEXT NOT NULL DEFAULT '';
-- The codes of the steps that warned, comma-separated: lists show them without reading steps.
ALTER TABLE checks ADD COLUMN warn_codes TEXT NOT NULL DEFAULT '';
UPDATE checks SET status = 'fail' WHERE NOT ok;
-- Checks that passed with a warning (plain HTTP, an expiring token) were kept as passes.
UPDATE checks SET status = 'warn' WHERE ok AND steps LIKE '%"status":"warn"%';
CREATE INDEX checks_checked_at ON checks(checked_at);

ALTER TABLE credentials ADD COLUMN auth_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN checks_paused_at TIMESTAMPTZ;
