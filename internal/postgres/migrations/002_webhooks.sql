-- Webhook deliveries already handled, by their webhook-id, so that a
-- redelivery of the same message is acknowledged without acting on it
-- again. A row is written only after the delivery's invalidations
-- succeeded; rows older than the retention period are deleted.
create table webhook_deliveries (
  id           text        primary key,
  received_at  timestamptz not null
);

create index webhook_deliveries_received_at on webhook_deliveries (received_at);

---- create above / drop below ----

drop table webhook_deliveries;
