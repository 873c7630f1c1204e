-- Cache entries shared by every replica: one row per cached key of a kind
-- (users, session lists). A row is in one of three states:
--   found = true,  body set,  fetched_at set:  a cached value;
--   found = false, body null, fetched_at set:  Wacht answered "not found";
--   found = false, body null, fetched_at null: invalidated, nothing cached.
-- Every write takes a new generation from one sequence, while holding the
-- row's lock, so a row's generation only grows and is never reused. A load
-- remembers the generation it read and writes its result back only if the
-- row still has it: an invalidation that raced with the load wins.
create sequence cache_entries_generation as bigint;

create table cache_entries (
  kind        text        not null,
  key         text        not null,
  found       boolean     not null default false,
  body        bytea,
  fetched_at  timestamptz,
  generation  bigint      not null default nextval('cache_entries_generation'),
  primary key (kind, key),
  constraint cache_entries_not_found_has_no_body check (found or body is null),
  constraint cache_entries_found_is_dated check (not found or fetched_at is not null)
);

-- One row per kind of cache entry. Invalidating a whole kind takes a new
-- generation here first; a load writes back only while its kind still has
-- the generation it read, checked under a share lock of this row, so that
-- it waits for an invalidation of the kind in progress and then yields.
create table cache_kinds (
  kind        text   primary key,
  generation  bigint not null
);

---- create above / drop below ----

drop table cache_kinds;
drop table cache_entries;
drop sequence cache_entries_generation;
