-- Wrong auth codes counted per domain (registry state beside the domain
-- record, read and written under the domain's lock). `rec` is the
-- postcard AuthFailures, as in the redb backend.
CREATE TABLE auth_failures (
    name text COLLATE "C" PRIMARY KEY,
    rec  bytea NOT NULL
);
