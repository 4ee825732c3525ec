-- Manual match decisions name the match group they create (match) or revoke (unmatch), so "active"
-- matches are exactly: automatic and manual groups not revoked by a later unmatch.
ALTER TABLE manual_match ADD COLUMN match_id text;
ALTER TABLE manual_match ADD COLUMN records text[];          -- file_name#record_ordinal, for people
CREATE INDEX manual_match_match_id ON manual_match (tenant_id, match_id) WHERE revoked_at IS NULL;
