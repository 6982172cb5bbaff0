-- The sidecar's own role and database on the shared PostgreSQL server (first start only).
CREATE ROLE iap LOGIN PASSWORD 'iap' CREATEDB;
CREATE DATABASE iap OWNER iap;
