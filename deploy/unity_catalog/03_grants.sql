-- 03 - Who may do what (run last). Principals are account-level groups:
--   nyc911_engineers - build and operate every layer (add the prod service principal here too)
--   nyc911_analysts  - read the gold KPI tables, nothing else
-- Privileges granted on a catalog are inherited by its schemas, tables, views and volumes.

-- Engineers manage all layers, in both catalogs.
GRANT ALL PRIVILEGES ON CATALOG nyc911 TO `nyc911_engineers`;
GRANT ALL PRIVILEGES ON CATALOG nyc911_dev TO `nyc911_engineers`;

-- Analysts: USE CATALOG is needed to reach any schema (it grants no data by itself); then
-- USE SCHEMA + SELECT on gold only. No grant on bronze or silver, and none on nyc911_dev.
GRANT USE CATALOG ON CATALOG nyc911 TO `nyc911_analysts`;
GRANT USE SCHEMA, SELECT ON SCHEMA nyc911.gold TO `nyc911_analysts`;

-- Remove schema-level privileges on bronze/silver someone may have granted by hand. Revoking a
-- privilege that was never granted is a no-op, so re-applying this file is safe.
REVOKE ALL PRIVILEGES ON SCHEMA nyc911.bronze FROM `nyc911_analysts`;
REVOKE ALL PRIVILEGES ON SCHEMA nyc911.silver FROM `nyc911_analysts`;
