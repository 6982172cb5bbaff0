DROP TABLE portal_secrets;
DROP TABLE payment_events;
DROP TABLE orders;
DROP TABLE packs;
