-- +goose Up
-- The relay makes the first attempt of a delivery to a healthy endpoint
-- itself and records the delivery once, with its outcome. A delivered row
-- keeps no copy of the event: nothing sends it again, and the copy was
-- most of the row.
ALTER TABLE webhook_deliveries ALTER COLUMN data DROP NOT NULL;

-- +goose Down
UPDATE webhook_deliveries SET data = 'null' WHERE data IS NULL;
ALTER TABLE webhook_deliveries ALTER COLUMN data SET NOT NULL;
