"""IfbyPhone as it calls Glue: SurVo results sent, p_t followed, one call played."""

from __future__ import annotations

import itertools
from typing import Any

from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.dialects.ifbyphone import decode_pass_through
from app.models import Call
from tests.helpers.settings import TEST_SECRETS

KEY = TEST_SECRETS["IFBYPHONE_SECRET"]
SAY_SURVO, ASK_SURVO = "4102", "4101"  # survo_forms/verify_caller.yaml's ifbyphone block
_sessions = itertools.count(1)


def send(
    client: FlaskClient,
    fields: dict[str, str],
    flow: str = "verify_caller",
    method: str = "POST",
    key: str | None = KEY,
) -> etree._Element:
    """Send a SurVo result and return the parsed `<action>`."""
    response = raw(client, fields, flow, method, key)
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    root = etree.fromstring(response.data)
    assert root.tag == "action"
    return root


def raw(
    client: FlaskClient, fields: dict[str, str], flow: str, method: str, key: str | None
) -> Any:
    query = {"key": key} if key is not None else {}
    if method == "GET":
        return client.get(f"/ifbyphone/{flow}", query_string={**query, **fields})
    return client.open(f"/ifbyphone/{flow}", method=method, query_string=query, data=fields)


def answers(session_id: str, account: str, pin: str, p_t: str = "") -> dict[str, str]:
    return {
        "caller_id": "3125550199",
        "session_id": session_id,
        "timestamp": f"2026-11-21 12:00:{next(_sessions) % 60:02d}",
        "p_t": p_t,
        "account": account,
        "pin": pin,
    }


def follow(client: FlaskClient, session_id: str, action: etree._Element) -> etree._Element:
    """What IfbyPhone does after a SurVo: post back with the p_t it was given."""
    p_t = action.findtext("parameters/p_t")
    assert p_t is not None, "a SurVo reply must carry p_t"
    return send(
        client,
        {
            "caller_id": "3125550199",
            "session_id": session_id,
            "p_t": p_t,
            "timestamp": f"2026-11-21 12:01:{next(_sessions) % 60:02d}",
        },
    )


def message(action: etree._Element) -> str | None:
    assert action.findtext("app") == "survo"
    assert action.findtext("parameters/id") == SAY_SURVO
    return action.findtext("parameters/user_parameters/message")


def the_call(session: Session, session_id: str) -> Call:
    session.commit()  # end the test's read snapshot, to see what requests wrote
    return session.scalars(select(Call).where(Call.platform_call_id == session_id)).one()


def count(session: Session, model: type) -> int:
    session.commit()
    return session.scalar(select(func.count()).select_from(model)) or 0


class Caller:
    """One phone call as IfbyPhone runs it: answers go out with the p_t of the
    last SurVo that asked, and every reply that expects a post-back gets one."""

    def __init__(self, client: FlaskClient, session_id: str, flow: str = "verify_caller"):
        self.client, self.session_id, self.flow = client, session_id, flow
        self.p_t = ""

    def answer(self, **fields: str) -> list[etree._Element]:
        replies = [
            send(
                self.client,
                {**answers(self.session_id, "", "", self.p_t), **fields},
                flow=self.flow,
            )
        ]
        while "next" in decode_pass_through(replies[-1].findtext("parameters/p_t") or ""):
            replies.append(follow(self.client, self.session_id, replies[-1]))
        self.p_t = replies[-1].findtext("parameters/p_t") or ""
        return replies
