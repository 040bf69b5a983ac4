-- The text search's trigram index keeps token positions (detail = 'full'), so a search is an
-- FTS5 phrase query: consecutive trigrams are the substring itself, answered from the index
-- alone, where a LIKE through a 'none' index re-read every candidate row's text (about three
-- times slower for a search matching thousands of repositories). The triggers of migration 0010
-- name the table, not its definition, and keep writing it.
DROP TABLE repository_search;
CREATE VIRTUAL TABLE repository_search USING fts5(search, tokenize = 'trigram', detail = 'full');
INSERT INTO repository_search (rowid, search)
    SELECT id, lower(name) || char(10) || lower(clone_url) FROM repositories;
