-- API-key rotations. Every rotation that passed input validation has a row
-- in api_key_rotations, written before Wacht is called, with outcome
-- 'unknown' until the outcome is known:
--   rotated:            the new key exists and the old key is revoked;
--   pending_revocation: the new key exists, the old key is revoked at
--                       previous_key_revokes_at by the worker;
--   failed:             nothing changed in Wacht (see error);
--   unknown:            Wacht may or may not have acted (see error), or the
--                       process stopped before recording the outcome.
-- No secret is ever stored: new_key_suffix is the last 8 characters that
-- Wacht itself shows as key_suffix.
create table api_key_rotations (
  id                       bigint      generated always as identity primary key,
  caller                   text        not null,
  app_slug                 text        not null,
  previous_key_id          text        not null,
  new_key_id               text        not null default '',
  new_key_suffix           text        not null default '',
  reason                   text        not null default '',
  grace                    interval    not null,
  outcome                  text        not null,
  error                    text        not null default '',
  requested_at             timestamptz not null,
  previous_key_revokes_at  timestamptz,
  previous_key_revoked_at  timestamptz,
  constraint api_key_rotations_outcome
    check (outcome in ('rotated', 'pending_revocation', 'failed', 'unknown'))
);

create index api_key_rotations_app_slug on api_key_rotations (app_slug, id desc);

-- Revocations of old keys at the end of a grace period, one per rotation
-- with a grace period. A worker on any replica takes a due row with
-- FOR UPDATE SKIP LOCKED, revokes the key in Wacht while holding the row
-- lock, and sets done_at, or counts a failed attempt and sets
-- next_attempt_at later.
create table scheduled_revocations (
  rotation_id      bigint      primary key references api_key_rotations (id),
  app_slug         text        not null,
  key_id           text        not null,
  due_at           timestamptz not null,
  next_attempt_at  timestamptz not null,
  attempts         integer     not null default 0,
  last_error       text        not null default '',
  done_at          timestamptz,
  constraint scheduled_revocations_not_early check (next_attempt_at >= due_at)
);

create index scheduled_revocations_pending on scheduled_revocations (next_attempt_at)
  where done_at is null;

---- create above / drop below ----

drop table scheduled_revocations;
drop table api_key_rotations;
