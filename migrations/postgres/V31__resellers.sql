-- Resellers and the registrar each belongs to, keyed by the handle in
-- lower case (handles match in any case). `rec` is the postcard Reseller,
-- as in the redb backend. A store with domains naming resellers but no
-- rows here keeps working: the registry infers a missing reseller's
-- registrar from its domains (docs/import.md "Resellers").
CREATE TABLE resellers (
    key text COLLATE "C" PRIMARY KEY,
    rec bytea NOT NULL
);
