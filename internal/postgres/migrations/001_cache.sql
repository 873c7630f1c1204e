-- Cache entries shared by every replica: one row per cached key of a kind
-- (users, session lists). A null body with found = false remembers that
-- Wacht answered "not found". generation grows on every invalidation, so a
-- load that started before an invalidation can tell that it must not
-- write its result back.
create table cache_entries (
  kind        text        not null,
  key         text        not null,
  found       boolean     not null,
  body        bytea,
  fetched_at  timestamptz not null,
  generation  bigint      not null default 0,
  primary key (kind, key)
);

---- create above / drop below ----

drop table cache_entries;
