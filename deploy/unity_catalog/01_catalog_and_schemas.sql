-- 01 - Catalogs, layer schemas and the landing volume of the NYC 911 lakehouse.
--
-- Run AFTER 02_storage_credential_and_external_locations.sql: every MANAGED LOCATION below must lie
-- inside an external location that already exists (see deploy/README.md for the full order).
-- Names match params/default.yaml (environment `databricks`: catalog nyc911, schemas
-- bronze/silver/gold) and the bundle targets (dev -> nyc911_dev, prod -> nyc911).
-- Every statement is idempotent (IF NOT EXISTS), so the file can be re-applied.
-- Replace <LAKEHOUSE_BUCKET> before running; never commit the real bucket name.

-- Production catalog: its own storage root plus one storage prefix per layer. Unity Catalog forbids
-- overlapping managed locations, so the catalog root is the sibling prefix nyc911/catalog/, not the
-- parent nyc911/.
CREATE CATALOG IF NOT EXISTS nyc911
  MANAGED LOCATION 's3://<LAKEHOUSE_BUCKET>/nyc911/catalog/'
  COMMENT 'NYC 911 End-to-End Data (t7p9-n9dy) lakehouse - production';

CREATE SCHEMA IF NOT EXISTS nyc911.bronze
  COMMENT 'Raw export lines as ingested, with lineage columns. Engineers only.'
  MANAGED LOCATION 's3://<LAKEHOUSE_BUCKET>/nyc911/bronze/';

CREATE SCHEMA IF NOT EXISTS nyc911.silver
  COMMENT 'Typed, de-duplicated weekly rows, quarantine and data-quality metrics. Engineers only.'
  MANAGED LOCATION 's3://<LAKEHOUSE_BUCKET>/nyc911/silver/';

CREATE SCHEMA IF NOT EXISTS nyc911.gold
  COMMENT 'Incident-weighted KPI tables (kpi_weekly, kpi_monthly_agency, kpi_summary). Analysts read here.'
  MANAGED LOCATION 's3://<LAKEHOUSE_BUCKET>/nyc911/gold/';

-- Where CSV exports are uploaded; the job ingests /Volumes/nyc911/bronze/landing/<file>.
CREATE VOLUME IF NOT EXISTS nyc911.bronze.landing
  COMMENT 'Raw CSV exports of t7p9-n9dy, as downloaded from NYC Open Data';

-- Development catalog (bundle target `dev`): same layout, one storage prefix for the whole catalog.
CREATE CATALOG IF NOT EXISTS nyc911_dev
  MANAGED LOCATION 's3://<LAKEHOUSE_BUCKET>/nyc911/dev/'
  COMMENT 'NYC 911 lakehouse - development copy written by the dev bundle target';

CREATE SCHEMA IF NOT EXISTS nyc911_dev.bronze COMMENT 'Development bronze layer';
CREATE SCHEMA IF NOT EXISTS nyc911_dev.silver COMMENT 'Development silver layer';
CREATE SCHEMA IF NOT EXISTS nyc911_dev.gold COMMENT 'Development gold layer';

CREATE VOLUME IF NOT EXISTS nyc911_dev.bronze.landing
  COMMENT 'Raw CSV exports for development runs';
