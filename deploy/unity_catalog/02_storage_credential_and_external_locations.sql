-- 02 - Storage credential and external locations (run this BEFORE 01, see deploy/README.md).
--
-- Step 1 - the storage credential (not SQL). Databricks SQL can SHOW/DESCRIBE/ALTER/DROP a storage
-- credential but not create one; create it with the CLI from the JSON next to this file, which binds
-- it to the IAM role arn:aws:iam::<AWS_ACCOUNT_ID>:role/nyc911-uc-access:
--
--   databricks storage-credentials create --json @deploy/unity_catalog/storage_credential.json
--   databricks storage-credentials get nyc911_uc_access     # note aws_iam_role.external_id
--
-- Put that external id into the sts:ExternalId condition of deploy/aws/uc_role_trust_policy.json
-- when it differs from the Databricks account id (it does when a non-account-admin creates the
-- credential). Then check it: databricks storage-credentials validate --storage-credential-name ...
--
-- Step 2 - one external location per storage prefix. Unity Catalog does not allow external
-- locations to overlap, so the catalog root is the sibling prefix nyc911/catalog/ rather than the
-- parent nyc911/; together the five prefixes are everything the IAM policy allows (nyc911/*).
-- No privileges on these locations are granted to anyone: tables are managed, and only
-- metastore admins create managed storage in them (01).

CREATE EXTERNAL LOCATION IF NOT EXISTS nyc911_catalog_root
  URL 's3://<LAKEHOUSE_BUCKET>/nyc911/catalog/'
  WITH (STORAGE CREDENTIAL nyc911_uc_access)
  COMMENT 'Managed storage root of catalog nyc911';

CREATE EXTERNAL LOCATION IF NOT EXISTS nyc911_bronze
  URL 's3://<LAKEHOUSE_BUCKET>/nyc911/bronze/'
  WITH (STORAGE CREDENTIAL nyc911_uc_access)
  COMMENT 'Managed storage of schema nyc911.bronze';

CREATE EXTERNAL LOCATION IF NOT EXISTS nyc911_silver
  URL 's3://<LAKEHOUSE_BUCKET>/nyc911/silver/'
  WITH (STORAGE CREDENTIAL nyc911_uc_access)
  COMMENT 'Managed storage of schema nyc911.silver';

CREATE EXTERNAL LOCATION IF NOT EXISTS nyc911_gold
  URL 's3://<LAKEHOUSE_BUCKET>/nyc911/gold/'
  WITH (STORAGE CREDENTIAL nyc911_uc_access)
  COMMENT 'Managed storage of schema nyc911.gold';

CREATE EXTERNAL LOCATION IF NOT EXISTS nyc911_dev_root
  URL 's3://<LAKEHOUSE_BUCKET>/nyc911/dev/'
  WITH (STORAGE CREDENTIAL nyc911_uc_access)
  COMMENT 'Managed storage root of the development catalog nyc911_dev';
