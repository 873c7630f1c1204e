-- The deployment's Wacht request budget, shared by every replica. A
-- replica leases a few tokens at a time; a lease counts in full against
-- every window that contains any instant of it, until it is settled with
-- the tokens it used. One row, locked by every grant, serialises grants
-- and holds the back-off that a 429 from Wacht imposes on all replicas.
create table wacht_budget (
  id            boolean     primary key default true check (id),
  backoff_until timestamptz not null default '-infinity'
);

insert into wacht_budget default values;

create table wacht_budget_leases (
  id      bigint      generated always as identity primary key,
  until   timestamptz not null,
  tokens  integer     not null check (tokens >= 0)
);

create index wacht_budget_leases_until on wacht_budget_leases (until);

-- wacht_budget_grant leases up to want tokens for ttl, leaving reserve of
-- lim unspent in every window, and returns the lease (id null when
-- nothing was granted) or how long until tokens may be free.
create function wacht_budget_grant(want integer, reserve integer, lim integer, win interval, ttl interval,
    out lease_id bigint, out granted integer, out until timestamptz, out retry_in interval)
language plpgsql volatile as $$
declare
  now_ts  timestamptz;
  backoff timestamptz;
  used    integer;
  need    integer;
begin
  select backoff_until into backoff from wacht_budget where id for update;
  now_ts := clock_timestamp();
  granted := 0;
  if backoff > now_ts then
    retry_in := backoff - now_ts;
    return;
  end if;
  delete from wacht_budget_leases l where l.until <= now_ts - win;
  select coalesce(sum(l.tokens), 0) into used from wacht_budget_leases l;
  granted := least(want, lim - reserve - used);
  if granted <= 0 then
    need := 1 - granted;
    select greatest(min(s.until) + win - now_ts, interval '1 millisecond') into retry_in
      from (select l.until, sum(l.tokens) over (order by l.until, l.id) as freed from wacht_budget_leases l) s
      where s.freed >= need;
    retry_in := coalesce(retry_in, win);
    granted := 0;
    return;
  end if;
  until := now_ts + ttl;
  insert into wacht_budget_leases (until, tokens) values (until, granted) returning id into lease_id;
end
$$;

---- create above / drop below ----

drop function wacht_budget_grant;
drop table wacht_budget_leases;
drop table wacht_budget;
