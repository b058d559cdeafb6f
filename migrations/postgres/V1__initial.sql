-- zonekeeper's PostgreSQL schema, version 1 (refinery migration).
--
-- Records are the same postcard-encoded values the redb backend stores
-- (`rec`), versioned by zk_meta.schema_version (crate::store::SCHEMA_VERSION);
-- the columns beside them are what the listings and searches filter and
-- order by. Keys are COLLATE "C": byte order, as redb's &str keys, so pages
-- and cursors agree between the backends.

CREATE TABLE zk_meta (
    key   text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE registrars (
    handle text COLLATE "C" PRIMARY KEY,
    fn     text COLLATE "C" NOT NULL,   -- lower-cased name, for `fn` search
    rec    bytea NOT NULL
);
CREATE INDEX registrars_fn ON registrars (fn, handle);

CREATE TABLE contacts (
    handle text COLLATE "C" PRIMARY KEY,
    fn     text COLLATE "C",            -- lower-cased public name, if any
    rec    bytea NOT NULL
);
CREATE INDEX contacts_fn ON contacts (fn, handle) WHERE fn IS NOT NULL;

CREATE TABLE domains (
    name             text COLLATE "C" PRIMARY KEY,
    registrar        text COLLATE "C" NOT NULL,
    reseller         text COLLATE "C",
    pending_transfer boolean NOT NULL,
    rec              bytea NOT NULL
);
CREATE INDEX domains_registrar ON domains (registrar, name);
CREATE INDEX domains_reseller ON domains (reseller, name) WHERE reseller IS NOT NULL;
CREATE INDEX domains_pending_transfer ON domains (name) WHERE pending_transfer;

CREATE TABLE domain_contacts (
    contact text COLLATE "C",
    domain  text COLLATE "C",
    PRIMARY KEY (contact, domain)
);
CREATE INDEX domain_contacts_domain ON domain_contacts (domain);

CREATE TABLE delegation (
    name         text COLLATE "C" PRIMARY KEY,
    state        text COLLATE "C" NOT NULL,
    pending_test boolean NOT NULL,      -- a newly declared NS set under test
    rec          bytea NOT NULL
);
CREATE INDEX delegation_state ON delegation (state, name);
CREATE INDEX delegation_pending ON delegation (name) WHERE pending_test;

-- A host exists while a domain declares it; its glue addresses in order.
CREATE TABLE hosts (
    name      text COLLATE "C" PRIMARY KEY,
    addresses text[] NOT NULL
);
CREATE TABLE host_domains (
    host   text COLLATE "C",
    domain text COLLATE "C",
    PRIMARY KEY (host, domain)
);
CREATE INDEX host_domains_domain ON host_domains (domain);
CREATE TABLE host_ips (
    ip   text COLLATE "C",
    host text COLLATE "C",
    PRIMARY KEY (ip, host)
);

CREATE TABLE history (
    name text COLLATE "C",
    seq  bigint,
    rec  bytea NOT NULL,
    PRIMARY KEY (name, seq)
);
CREATE TABLE rounds (
    name text COLLATE "C",
    seq  bigint,
    rec  bytea NOT NULL,
    PRIMARY KEY (name, seq)
);

CREATE TABLE feed (
    seq bigint PRIMARY KEY,
    rec bytea NOT NULL
);
CREATE TABLE feed_registrars (
    registrar text COLLATE "C",
    seq       bigint,
    PRIMARY KEY (registrar, seq)
);

-- Scheduler claims: a domain is probed by the holder of an unexpired lease.
CREATE TABLE leases (
    name    text COLLATE "C" PRIMARY KEY,
    owner   text NOT NULL,
    expires timestamptz NOT NULL
);
CREATE INDEX leases_owner ON leases (owner);
