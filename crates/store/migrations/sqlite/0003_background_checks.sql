-- Background checks: a schedule and a lease per repository, a fuller check history, and the
-- credential's authentication-failure count that pauses polling before it locks an account.

-- When the scheduler checks the repository next (NULL: as soon as it can). An instance that
-- takes a due check writes its id and a deadline into the lease; an instance that dies
-- mid-check leaves a lease that expires, and another instance takes the check over.
ALTER TABLE repositories ADD COLUMN next_check_at TEXT;
ALTER TABLE repositories ADD COLUMN lease_owner TEXT;
ALTER TABLE repositories ADD COLUMN lease_until TEXT;
CREATE INDEX repositories_due ON repositories(next_check_at);

-- ok | warn | fail, and why the check ran (register | manual | schedule | credential).
ALTER TABLE checks ADD COLUMN status TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE checks ADD COLUMN reason TEXT NOT NULL DEFAULT 'manual';
ALTER TABLE checks ADD COLUMN instance TEXT NOT NULL DEFAULT '';
-- The codes of the steps that warned, comma-separated: lists show them without reading steps.
ALTER TABLE checks ADD COLUMN warn_codes TEXT NOT NULL DEFAULT '';
UPDATE checks SET status = 'fail' WHERE ok = 0;
-- Checks that passed with a warning (plain HTTP, an expiring token) were kept as passes.
UPDATE checks SET status = 'warn' WHERE ok = 1 AND steps LIKE '%"status":"warn"%';
CREATE INDEX checks_checked_at ON checks(checked_at);

ALTER TABLE credentials ADD COLUMN auth_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE credentials ADD COLUMN checks_paused_at TEXT;
