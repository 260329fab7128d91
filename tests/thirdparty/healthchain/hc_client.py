"""HealthChain's CDS Hooks client against a running PainPath (run in its own venv).

    python hc_client.py <PainPath base URL> <scenario JSON file>

The scenario file holds ``{"calls": [{"hook", "service", "context", "prefetch"}, ...]}``.
Discovery is read with plain HTTP and parsed into HealthChain's ``CDSServiceInformation`` model
(HealthChain has no discovery call). Each call's request is built by HealthChain's
``CdsRequestConstructor`` (its ``CDSRequest`` and hook context models) and sent by its
``SandboxClient.send_requests``, which parses each answer into its ``CDSResponse`` model and keeps
the raw answer only when that parsing fails (an HTTP error becomes ``{}``, logged on stderr).

HealthChain 0.16.1 types ``CDSRequest.context`` as the base ``BaseHookContext``, and pydantic 2
serialises a field by its declared type, so the order hooks' ``draftOrders`` and ``selections``
never reach the wire (PainPath then answers 400 naming ``context.draftOrders``). Each order call
is therefore made twice: as HealthChain ships (``as_shipped``), and with ``CDSRequest`` narrowed
to the hook's own context model (``typed``: a subclass declaring ``context`` as
``OrderSelectContext``/``OrderSignContext``, nothing else changed), which is what a HealthChain
user has to do today. Prints a JSON report: the discovery as the model read it, and per call the
request sent, the answer, and whether the answer parsed as a CDSResponse.
"""

from __future__ import annotations

import json
import sys

import httpx
from healthchain.models.hooks.orderselect import OrderSelectContext
from healthchain.models.hooks.ordersign import OrderSignContext
from healthchain.models.requests.cdsrequest import CDSRequest
from healthchain.models.responses.cdsdiscovery import CDSServiceInformation
from healthchain.models.responses.cdsresponse import CDSResponse
from healthchain.sandbox.requestconstructors import CdsRequestConstructor
from healthchain.sandbox.sandboxclient import SandboxClient
from healthchain.sandbox.workflows import Workflow


class OrderSelectRequest(CDSRequest):
    context: OrderSelectContext


class OrderSignRequest(CDSRequest):
    context: OrderSignContext


TYPED = {"order-select": OrderSelectRequest, "order-sign": OrderSignRequest}


def send(base: str, call: dict, workflow: Workflow, typed: bool) -> dict:
    """One call through SandboxClient; the request as sent and the answer."""
    client = SandboxClient(url=f"{base}/cds-services/{call['service']}", workflow=workflow)
    request = CdsRequestConstructor().construct_request(
        call["prefetch"], workflow=workflow, context=call["context"]
    )
    if typed:
        request = TYPED[call["hook"]](
            hook=request.hook,
            hookInstance=request.hookInstance,
            context=request.context,
            prefetch=request.prefetch,
        )
    client.requests.append(request)
    (answer,) = client.send_requests()
    try:
        CDSResponse(**answer)
        parsed = bool(answer)
    except Exception:  # reported as parsed=false, not raised
        parsed = False
    sent = request.model_dump(exclude_none=True, mode="json")
    return {"request": sent, "answer": answer, "parsed": parsed}


def main() -> None:
    base, scenario_path = sys.argv[1], sys.argv[2]
    with open(scenario_path, encoding="utf-8") as handle:
        scenario = json.load(handle)
    discovery = CDSServiceInformation(**httpx.get(f"{base}/cds-services").json())
    calls = []
    for call in scenario["calls"]:
        workflow = Workflow(call["hook"])
        result = {"hook": call["hook"], **send(base, call, workflow, typed=False)}
        if call["hook"] in TYPED:
            result = {"hook": call["hook"], "as_shipped": result,
                      **send(base, call, workflow, typed=True)}  # fmt: skip
        calls.append(result)
    report = {"discovery": discovery.model_dump(exclude_none=True, mode="json"), "calls": calls}
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    main()
