"""The admin overview, and each admin's time zone (their Settings page).
Views only orchestrate: the counting is in overview.py, the charts in
overview_page.py.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField

from app.admin import overview_page, time_zones
from app.admin.views import bp, current_admin, submitted
from app.db import get_session
from app.models import User, utcnow

PERIODS = {"1": "the last 24 hours", "7": "the last 7 days"}


# --- time zones -------------------------------------------------------------------


def admin_zone() -> ZoneInfo:
    """The signed-in admin's zone, else GLUE_TIME_ZONE (looked up once per request)."""
    if "admin_zone" not in g:
        g.admin_zone = time_zones.zone(current_admin().time_zone, current_app.config["TIME_ZONE"])
    zone: ZoneInfo = g.admin_zone
    return zone


@bp.app_template_filter("admin_time")
def _admin_time(value: datetime) -> str:
    """A stored time in the admin's zone, with the zone's abbreviation."""
    return time_zones.shown(value, admin_zone())


class SettingsForm(FlaskForm):
    # Its choices, every zone this system knows, are given per request.
    time_zone = SelectField("Time zone", invalid_choice_message="Choose a zone from the list.")


@bp.route("/settings", methods=["GET", "POST"])
def settings() -> ResponseReturnValue:
    """The admin's own settings: the time zone the pages show times in."""
    default = current_app.config["TIME_ZONE"]
    form = SettingsForm(time_zone=current_admin().time_zone or "")
    form.time_zone.choices = [
        SelectChoice("", f"The server's: {default}"),
        *(SelectChoice(name) for name in time_zones.zone_names()),
    ]
    if submitted(form):
        session = get_session()
        me = session.get(User, current_admin().id)
        assert me is not None
        me.time_zone = form.time_zone.data or None
        session.commit()
        flash(f"Times are now shown in {form.time_zone.data or default}.")
        return redirect(url_for(".settings"))
    status = 400 if form.errors else 200
    return render_template("admin/settings.html", form=form, zone=admin_zone()), status


# --- overview ------------------------------------------------------------------------


@bp.get("/")
def index() -> ResponseReturnValue:
    """The overview: calls per hour, each flow's funnel, providers, request times."""
    days = request.args.get("days", "1")
    if days not in PERIODS:
        days = "1"
    zone = admin_zone()
    found = overview_page.build(get_session(), int(days), zone, utcnow())
    return render_template("admin/overview.html", days=days, periods=PERIODS, page=found, zone=zone)
