-- Retention of the raw zone (jobs/maintenance.py): a raw file deleted by the tenant's policy keeps its manifest row
-- (what was received, when, its SHA-256: the same content delivered again is still recognised, never landed twice),
-- with the time its bytes were deleted.
ALTER TABLE raw_file ADD COLUMN raw_purged_at timestamptz;
