-- Freshness, ordering and cluster-wide refresh of cache entries.
--
-- version: the order of the state a row holds, in Unix microseconds on
--   Wacht's clock: the entity's updated_at (a user's, or the latest of its
--   email addresses and phone numbers), or a webhook's timestamp where the
--   entity has none. Null when unknown (rows written before this column,
--   values whose loader gives no version). A write that carries a version
--   is applied only when the row's version is null or not greater: a
--   webhook delivered late never overwrites a newer state. A "not found"
--   row with a version is a tombstone left by a deletion: it blocks every
--   older write until it expires.
-- expires_at: after it the row serves no purpose (its value is past the
--   hard maximum age and the stale-on-error limit, its "not found" or
--   tombstone past its retention, or it was invalidated long ago). Rows
--   with expires_at < now() may be deleted at any time, in any number: a
--   load writes back by updating the row it read (or inserting where it read
--   none), never by re-creating a deleted row, and an invalidated row is
--   kept at least 10 minutes, longer than any load, so that deleting rows
--   cannot let an older result back in. Deleting a tombstone before its
--   expires_at only loses its protection.
-- refresh_claimed_until: a replica refreshing the row in the background has
--   claimed it until then (set by a conditional update, cleared by the
--   write-back); other replicas do not load the key meanwhile and pick up
--   the refreshed row. A claim past its time is void (the claimer died).
-- tags: strings a value is found by (for a session list, the ids of the
--   sessions it holds), so that an event about a session reaches every
--   cached list that holds it.
alter table cache_entries
  add column version               bigint,
  add column expires_at            timestamptz not null default now() + interval '24 hours',
  add column refresh_claimed_until timestamptz,
  add column tags                  text[]      not null default '{}';

update cache_entries set expires_at = coalesce(fetched_at, now()) + interval '24 hours';

create index cache_entries_expires_at on cache_entries (expires_at);
create index cache_entries_tags on cache_entries using gin (tags);

---- create above / drop below ----

drop index cache_entries_tags;
drop index cache_entries_expires_at;
alter table cache_entries
  drop column tags,
  drop column refresh_claimed_until,
  drop column expires_at,
  drop column version;
