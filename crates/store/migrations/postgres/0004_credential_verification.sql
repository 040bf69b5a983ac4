-- Which host a credential is for (a base URL such as https://bitbucket.org, or an integration's
-- host), and the result of its last verification on that host, as the server's JSON: status,
-- code, message, the identity the host reported, granted and missing scopes, when. NULL: never
-- verified.
ALTER TABLE credentials ADD COLUMN host TEXT;
ALTER TABLE credentials ADD COLUMN verification TEXT;

-- Why a repository is due before its regular time: 'manual' ("check all now"), 'credential'
-- (its credential was edited). The scheduler records the check with that reason, so history
-- tells a person's request from the regular schedule. NULL: the regular schedule.
ALTER TABLE repositories ADD COLUMN due_reason TEXT;
