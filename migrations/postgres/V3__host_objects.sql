-- EPP host objects (RFC 5732): a registrar's nameserver names with their
-- addresses. `rec` is the postcard HostObject, as in the redb backend; the
-- domains using a host stay derived from the domains (`host_domains`).
CREATE TABLE host_objects (
    name text COLLATE "C" PRIMARY KEY,
    rec  bytea NOT NULL
);
