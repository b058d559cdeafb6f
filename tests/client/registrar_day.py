"""A registrar's day through a client generated from the served OpenAPI
document (openapi-python-client), typed calls only: create, nameservers,
delegation progress until delegated, DS, renew, auth code, transfer to a
second registrar, approve, events. Run by tests/it/client_day.rs with:

  PYTHONPATH=<dir holding the generated package zk_client>
  ZK_BASE=http://127.0.0.1:PORT  ZK_TOKEN_A=…  ZK_TOKEN_B=…
  ZK_DOMAIN=day.ru  ZK_REGISTRANT=C1-RU  ZK_NS='[["ns1.day.ru", "127.x.y.1"], …]'

Exits non-zero (an AssertionError) at the first answer that is not the
documented type.
"""

import json
import os
import time

from zk_client import AuthenticatedClient
from zk_client.api.default import (
    approve_transfer,
    create_domain,
    declare_ds,
    declare_nameservers,
    get_delegation,
    get_webhook,
    list_events,
    renew_domain,
    request_transfer,
    reset_auth_code,
)
from zk_client.models import (
    AuthCode,
    Decision,
    Delegation,
    DelegationState,
    Domain,
    DomainCreate,
    Ds,
    DsSet,
    EventList,
    Nameserver,
    NameserverSet,
    Transfer,
    TransferRequest,
    WebhookState,
)
from zk_client.types import UNSET, Unset

BASE = os.environ["ZK_BASE"]
DOMAIN = os.environ["ZK_DOMAIN"]
NS = json.loads(os.environ["ZK_NS"])

alpha = AuthenticatedClient(base_url=BASE, token=os.environ["ZK_TOKEN_A"], raise_on_unexpected_status=True)
beta = AuthenticatedClient(base_url=BASE, token=os.environ["ZK_TOKEN_B"], raise_on_unexpected_status=True)


def typed(value, cls):
    assert isinstance(value, cls), f"expected {cls.__name__}, got {value!r}"
    return value


# Morning: register the domain, declare its nameservers.
created = typed(
    create_domain.sync(client=alpha, body=DomainCreate(name=DOMAIN, registrant=os.environ["ZK_REGISTRANT"])),
    Domain,
)
assert created.name == DOMAIN
paid_till = created.paid_till

nameservers = NameserverSet(nameservers=[Nameserver(name=n, addresses=[a]) for n, a in NS])
view = typed(declare_nameservers.sync(DOMAIN, client=alpha, body=nameservers), Delegation)
assert view.state == DelegationState.TESTING, view.state

# The delegation test runs: follow it until delegated.
deadline = time.monotonic() + 60
while True:
    view = typed(get_delegation.sync(DOMAIN, client=alpha), Delegation)
    if view.state == DelegationState.DELEGATED:
        break
    assert view.state == DelegationState.TESTING, f"{view.state}: {view.last_round}"
    assert time.monotonic() < deadline, "not delegated within 60 s"
    time.sleep(0.2)
assert view.in_zone

# DNSSEC: declare a DS set; the published delegation stays while it is tested.
ds = DsSet(ds=[Ds(key_tag=12345, algorithm=13, digest_type=2, digest="aa" * 32)])
view = typed(declare_ds.sync(DOMAIN, client=alpha, body=ds), Delegation)
assert view.state == DelegationState.DELEGATED, view.state

# Renew by one period.
renewed = typed(renew_domain.sync(DOMAIN, client=alpha), Domain)
assert renewed.paid_till > paid_till, (renewed.paid_till, paid_till)

# The registrant moves: an auth code, handed to the second registrar.
code = typed(reset_auth_code.sync(DOMAIN, client=alpha), AuthCode)
assert not isinstance(code.auth_code, Unset)
transfer = typed(request_transfer.sync(DOMAIN, client=beta, body=TransferRequest(auth_code=code.auth_code)), Transfer)
assert transfer.to == os.environ["ZK_HANDLE_B"], transfer
decision = typed(approve_transfer.sync(DOMAIN, client=alpha), Decision)
assert decision.registrar == os.environ["ZK_HANDLE_B"], decision

# Evening: the change feed of the day, read in pages.
seen = []
after = None
while True:
    page = typed(list_events.sync(client=alpha, after=after or UNSET, limit=5), EventList)
    seen += page.events
    if not page.events:
        break
    after = page.next_cursor
domains = {e.domain for e in seen}
assert DOMAIN in domains, domains
states = [e.to for e in seen if e.domain == DOMAIN]
assert DelegationState.DELEGATED in states, states
cursors = [int(e.cursor) for e in seen]
assert cursors == sorted(cursors), cursors

hook = typed(get_webhook.sync(client=alpha), WebhookState)
assert hook.configured is False

print(f"registrar day done: {len(seen)} events")
