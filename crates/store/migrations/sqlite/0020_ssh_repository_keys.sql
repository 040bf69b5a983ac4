-- The same repository over HTTPS and over SSH is two registrations (issue 13): each is checked
-- with its own credential (a token, a deploy key). Until now an SSH URL on bitbucket.org,
-- github.com and gitlab.com had its HTTPS key (`provider:path`) and an Azure DevOps SSH URL its
-- HTTPS URL; they become `provider:ssh:path` and `ssh:<HTTPS URL>`
-- (`berth_core::CloneUrl::repository_key`). Self-hosted SSH keys (`ssh://…`) stay. A snapshot
-- taken before this migration is given the same keys when it is imported (snapshot/import.rs),
-- so each statement leaves a key it has moved already as it is.
UPDATE repositories SET repo_key = 'ssh:' || repo_key
 WHERE clone_url LIKE 'ssh://%' AND repo_key LIKE 'https://%';
UPDATE repositories
   SET repo_key = substr(repo_key, 1, instr(repo_key, ':')) || 'ssh:' || substr(repo_key, instr(repo_key, ':') + 1)
 WHERE clone_url LIKE 'ssh://%' AND repo_key NOT LIKE 'ssh:%' AND repo_key NOT LIKE 'https://%'
   AND instr(repo_key, ':') > 0 AND substr(repo_key, instr(repo_key, ':') + 1) NOT LIKE 'ssh:%';
