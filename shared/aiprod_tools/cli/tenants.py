"""``aiprod tenant add|list|show|set-budget``: the configured tenants and their budgets.

On the emulators (``PUBSUB_EMULATOR_HOST`` set) ``add`` also makes the tenant's topic and its
push subscription to route_job, as Terraform does in a project; in a project, add the tenant
to Terraform's ``tenants`` variable too (topic, subscription, publisher IAM).
"""

from __future__ import annotations

import argparse
import json
import os

from aiprod_tools.cli import context


def add_add(sub, name: str) -> argparse.ArgumentParser:
    add = sub.add_parser(name, help="configure a tenant, its daily budget and publishers")
    add.add_argument("name", help="lower-case letters, digits, '_' and '-'")
    add.add_argument("--budget", required=True, help="daily budget in USD, e.g. 250 or 12.50")
    add.add_argument(
        "--publisher",
        action="append",
        default=[],
        metavar="MEMBER",
        help="IAM member that may publish on the tenant's topic (repeatable)",
    )
    return add


def add(args: argparse.Namespace) -> int:
    from aiprod.domain.money import money
    from aiprod.domain.tenants import Tenant
    from aiprod.services import tenant_admin
    from aiprod.services.budget_admin import parse_limit

    limit = parse_limit(args.budget)
    tenant_admin.check(args.name, args.publisher)
    app = context.make_app()
    tenant = Tenant(args.name, tuple(args.publisher), app.clock())
    tenant_admin.add(app.store, app.settings, tenant, limit, context.today(app))
    view = tenant_admin.view(app.store, app.settings, tenant)
    print(f"tenant {tenant.name} configured: daily budget {money(view.budget_micros)}")
    print(f"  publishes on {view.topic}")
    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        from aiprod_tools.stack.provision import provision_tenant

        provision_tenant(app.bus, tenant.name)
        print(f"  made {view.topic} and {view.subscription} on the Pub/Sub emulator")
    else:
        print("  its topic, subscription and IAM come from Terraform: add it to var.tenants")
    return 0


def add_list(sub, name: str) -> argparse.ArgumentParser:
    listing = sub.add_parser(name, help="every configured tenant")
    listing.add_argument("--json", action="store_true", help="integer micro-USD, for tools")
    return listing


def list_tenants(args: argparse.Namespace) -> int:
    from aiprod.services import tenant_admin
    from aiprod_tools.views.tenants import tenants_table

    app = context.make_app()
    views = tenant_admin.list_views(app.store, app.settings)
    if args.json:
        print(json.dumps({"tenants": [v.to_json() for v in views]}, indent=2))
    else:
        print(tenants_table(views))
    return 0


def add_show(sub, name: str) -> argparse.ArgumentParser:
    show = sub.add_parser(name, help="one tenant: budget, topic, publishers")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="integer micro-USD, for tools")
    return show


def show(args: argparse.Namespace) -> int:
    from aiprod.services import tenant_admin
    from aiprod_tools.views.tenants import tenant_text

    app = context.make_app()
    view = tenant_admin.show(app.store, app.settings, args.name)
    print(json.dumps(view.to_json(), indent=2) if args.json else tenant_text(view))
    return 0


def add_set_budget(sub, name: str) -> argparse.ArgumentParser:
    budget = sub.add_parser(name, help="change a tenant's daily budget now (no deploy)")
    budget.add_argument("name")
    budget.add_argument("usd", help="the new daily budget in USD")
    return budget


def set_budget(args: argparse.Namespace) -> int:
    from aiprod.services import tenant_admin
    from aiprod.services.budget_admin import parse_limit
    from aiprod_tools.views.budget import limit_change_text

    limit = parse_limit(args.usd)
    app = context.make_app()
    change = tenant_admin.set_budget(app.store, app.settings, args.name, limit, context.today(app))
    print(limit_change_text(change))
    return 0
