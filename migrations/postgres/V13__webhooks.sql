-- Registrar webhooks (docs/api.md, "Webhooks"): the configuration, written
-- with the registrar, and the delivery worker's state. `rec` is JSON (not
-- postcard) so fields may be added without a migration, as in the redb
-- backend. (Numbered apart from other branches' migrations.)
CREATE TABLE webhooks (
    registrar text COLLATE "C" PRIMARY KEY,
    rec       bytea NOT NULL
);
CREATE TABLE webhook_state (
    registrar text COLLATE "C" PRIMARY KEY,
    rec       bytea NOT NULL
);
